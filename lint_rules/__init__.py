"""lorakit's built-in rule packs (installed as `lorakit_rules`).

One module per concern, each an ordinary plugin registered through the "lorakit" entry-point
group: `structure` (LK0xx, is the dataset well-formed) and `hygiene` (LK1xx, caption text).
"""
