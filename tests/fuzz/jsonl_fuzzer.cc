// Fuzz target: the JSONL data readers (server/engine/data.h), every record shape: the first byte
// picks the task, the rest is the file.
#include <cstddef>
#include <cstdint>

#include "server/engine/data.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  constexpr attune::Task kTasks[] = {attune::Task::kSequenceClassification,
                                     attune::Task::kRegression, attune::Task::kCausalLm};
  const attune::Task task = kTasks[data[0] % 3];
  attune::fuzz::TempFile file(data + 1, size - 1, ".jsonl");
  if (!file.ok()) return 0;
  auto records = attune::engine::ReadJsonl(file.path(), "train", task);
  if (records.ok() && task == attune::Task::kSequenceClassification) {
    attune::engine::BuildLabelMap(*records, "train").IgnoreError();
  }
  return 0;
}
