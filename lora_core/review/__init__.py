"""`lorakit review DATASET`: a local web app to see a dataset with its findings, edit captions with a
live re-lint, apply fixes with a preview, replace over a filter, and undo across restarts.

One module per job: app (the Starlette application: routes, the security rules, JSON shapes),
journal (undo and redo, signed in the dataset's cache), thumbnails, static/ (the page, its script
and style, no build step). The editing itself is lora_core.session's `DatasetSession`, the public
API an editor plugin would use too.

Starlette and uvicorn are the `review` extra (`pip install 'lorakit[review]'`): nothing here is
imported by `lorakit lint` or `lorakit --help`.
"""
