# Owned by the models work: safetensors, config, RoBERTa/BERT, Llama, LoRA.
set(ATTUNE_MODEL_SOURCES)
set(ATTUNE_MODEL_TESTS)
