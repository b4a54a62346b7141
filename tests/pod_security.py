"""The Kubernetes Pod Security Standards' restricted profile as checks on a pod spec, for tests.

Written from the standard itself (https://kubernetes.io/docs/concepts/security/pod-security-standards/,
Kubernetes v1.33: the Baseline controls plus the Restricted ones), control by control, so that a
manifest the namespace's `pod-security.kubernetes.io/enforce: restricted` label would reject fails
here first. `violations()` returns one line per failed control; [] means admitted.
"""

from __future__ import annotations

from typing import Any

BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                         "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                           "projected", "secret"}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def _containers(spec: dict) -> list[tuple[str, dict]]:
    return [(f"{kind}[{c.get('name')}]", c) for kind in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(kind) or []]


def violations(spec: dict, annotations: dict[str, str] | None = None) -> list[str]:
    """Every restricted-profile control the pod spec fails."""
    out: list[str] = []
    pod_sc: dict[str, Any] = spec.get("securityContext") or {}
    containers = _containers(spec)
    # ---- Baseline ----
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            out.append(f"host namespaces: {key} is true")
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        out.append("HostProcess: pod windowsOptions.hostProcess is true")
    for name, c in containers:
        sc = c.get("securityContext") or {}
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            out.append(f"HostProcess: {name}")
        if sc.get("privileged"):
            out.append(f"privileged containers: {name}")
        added = set((sc.get("capabilities") or {}).get("add") or [])
        if added - BASELINE_CAPABILITIES:
            out.append(f"capabilities (baseline): {name} adds {sorted(added - BASELINE_CAPABILITIES)}")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"host ports: {name} uses hostPort {port['hostPort']}")
        if sc.get("procMount") not in (None, "Default"):
            out.append(f"/proc mount type: {name} uses {sc['procMount']}")
        out += _selinux(sc.get("seLinuxOptions"), name)
        out += _apparmor(sc.get("appArmorProfile"), name)
    out += _selinux(pod_sc.get("seLinuxOptions"), "pod")
    out += _apparmor(pod_sc.get("appArmorProfile"), "pod")
    for key, value in (annotations or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
                value == "runtime/default" or value.startswith("localhost/")):
            out.append(f"AppArmor: annotation {key}={value}")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            out.append(f"sysctls: {sysctl.get('name')} is not in the safe set")
    for vol in spec.get("volumes") or []:
        if "hostPath" in vol:
            out.append(f"hostPath volumes: {vol.get('name')}")
    # ---- Restricted ----
    for vol in spec.get("volumes") or []:
        kinds = set(vol) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            out.append(f"volume types: {vol.get('name')} is {sorted(kinds - RESTRICTED_VOLUME_TYPES)}")
    pod_non_root = pod_sc.get("runAsNonRoot") is True
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp == "Unconfined":
        out.append("seccomp: the pod's profile is Unconfined")
    if pod_sc.get("runAsUser") == 0:
        out.append("running as non-root user: the pod sets runAsUser 0")
    for name, c in containers:
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"privilege escalation: {name} does not set allowPrivilegeEscalation false")
        if sc.get("runAsNonRoot") is False or not (pod_non_root or sc.get("runAsNonRoot") is True):
            out.append(f"running as non-root: {name} (runAsNonRoot true on the pod or the container)")
        if sc.get("runAsUser") == 0:
            out.append(f"running as non-root user: {name} sets runAsUser 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp == "Unconfined" or (seccomp is None and pod_seccomp not in ("RuntimeDefault", "Localhost")):
            out.append(f"seccomp: {name} has no RuntimeDefault or Localhost profile")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"capabilities: {name} does not drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"capabilities: {name} adds {sorted(set(caps['add']) - {'NET_BIND_SERVICE'})}")
    return out


def _selinux(options: dict | None, where: str) -> list[str]:
    if not options:
        return []
    out = []
    if options.get("type", "") not in SELINUX_TYPES:
        out.append(f"SELinux: {where} type {options['type']}")
    if options.get("user") or options.get("role"):
        out.append(f"SELinux: {where} sets user/role")
    return out


def _apparmor(profile: dict | None, where: str) -> list[str]:
    if profile and profile.get("type") not in ("RuntimeDefault", "Localhost"):
        return [f"AppArmor: {where} profile {profile.get('type')}"]
    return []
