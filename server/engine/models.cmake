# Owned by the models work: safetensors, config, RoBERTa/BERT, Llama, LoRA.
set(ATTUNE_MODEL_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/safetensors.cc
)
set(ATTUNE_MODEL_TESTS
  ${CMAKE_CURRENT_SOURCE_DIR}/safetensors_test.cc
)
