"""One LoRA fine-tuning run with TRL + PEFT on prepared data, tracked with Trackio; the built-in
students.
"""
