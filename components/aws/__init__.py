"""AWS-side components: network, EKS cluster, GPU node pools, model store and pod access."""
