"""Execution on torch.distributed: group lookup, collectives, the overlapped pipelines."""
