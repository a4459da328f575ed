"""Tiers implemented in Python on top of the shared tape and kernel ABI (LLVM via llvmlite)."""
