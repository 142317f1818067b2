// attune-make-example OUT: writes the example model and data (see example_assets.h).
#include <iostream>

#include "server/tools/example_assets.h"

int main(int argc, char** argv) {
  if (argc != 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cerr << "usage: attune-make-example OUT\n"
                 "Writes OUT/model (a tiny RoBERTa-style classifier in Hugging Face format:\n"
                 "config.json, model.safetensors, tokenizer.json), OUT/train.jsonl and\n"
                 "OUT/validation.jsonl (a learnable sentiment task).\n";
    return 2;
  }
  attune::ExampleSummary summary;
  absl::Status status = attune::WriteExampleAssets(argv[1], &summary);
  if (!status.ok()) {
    std::cerr << "attune-make-example: " << status.message() << "\n";
    return 1;
  }
  std::cout << "wrote " << argv[1] << ": model/ (vocab " << summary.vocab_size << "), train.jsonl ("
            << summary.train_examples << "), validation.jsonl (" << summary.validation_examples
            << ")\n";
  return 0;
}
