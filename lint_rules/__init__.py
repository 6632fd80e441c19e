"""lorakit's built-in rule packs (installed as `lorakit_rules`).

One module per concern, each an ordinary plugin registered through the "lorakit" entry-point
group, exactly like a third-party pack:

- `structure` LK0xx: is the dataset well-formed (files, rows, encodings, image paths)
- `hygiene`   LK1xx: caption text hygiene (whitespace, separators, invisible characters, duplicates)
- `style`     LK2xx: the style every caption must carry (`[style]`)
- `entities`  LK3xx: identity tokens and the trigger (`[entities]`)
- `template`  LK4xx: template conformance (`[template]`)
- `tokens`    LK5xx: exact CLIP token counts (`[tokens]`)
- `training`  LK7xx: training settings that make label noise worse (`[train]`)
"""
