"""Remote compute: running the train and sweep stages on Hugging Face Jobs."""
