"""The offline runtime: Pulumi's mock runtime with a recorder, and the answers it gives invokes."""
