# Owned by the trainer work: data, optimizer, schedule, trainer loop, checkpoints.
set(ATTUNE_TRAINER_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/batches.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/checkpoint.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/evaluate.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/cuda_graph_step.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/step_graphs.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/data.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/optimizer.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/stats.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/tensor_file.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/trainer.cc)
set(ATTUNE_TRAINER_TESTS
  ${CMAKE_CURRENT_SOURCE_DIR}/data_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/optimizer_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/checkpoint_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/checkpoint_format_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/trainer_test.cc)
