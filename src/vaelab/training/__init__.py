"""Training: the kind-agnostic loop (`loop`) and the helpers a kind's trainer uses (`common`, `split`).

Nothing here imports a model kind: `loop.train` is handed the kind, and kinds import only `common` and
`split`, never the loop.
"""
