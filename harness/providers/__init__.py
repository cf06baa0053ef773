"""Infrastructure providers: cluster (kind | existing kubeconfig), database
(Postgres container | existing DSN), registry (container)."""
