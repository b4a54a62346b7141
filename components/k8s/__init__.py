"""Kubernetes-side components: device plugin, credentials, the shared serving pod spec."""
