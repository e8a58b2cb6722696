"""Getting the student out: a local export (adapter, merged model, card) and an upload to the
Hugging Face Hub.
"""
