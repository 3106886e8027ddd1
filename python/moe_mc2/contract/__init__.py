"""The op's contract: names shared with GE, activations, input rules and shapes.

Everything here is pure Python over shapes and dtypes; nothing communicates.
"""
