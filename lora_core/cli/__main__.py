"""`python -m lora_core.cli` runs the lorakit command line."""

from lora_core.cli import main

main()
