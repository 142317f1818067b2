# Owned by the models work: safetensors, config, RoBERTa/BERT, Llama, LoRA.
# Only lora.cc, roberta.cc, llama.cc, lm_loss.cc and model.cc include LibTorch (each costs ~30 s to compile).
set(ATTUNE_MODEL_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/safetensors.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/safetensors_writer.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/hf_config.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/lora.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/segmented_lora.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/roberta.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/llama.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/lm_loss.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/model.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/fused_ops.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/packed_attention.cc
)
set(ATTUNE_MODEL_TESTS
  ${CMAKE_CURRENT_SOURCE_DIR}/safetensors_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/hf_config_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/lora_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/dora_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/model_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/pretrained_base_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/lm_loss_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/fused_ops_test.cc
)
