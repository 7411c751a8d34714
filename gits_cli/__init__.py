"""`gits`: the everyday verbs of the platform in one command (status, use cases, loading,
training, binding, publishing, labels, reports), over the APIs `make run` serves."""
