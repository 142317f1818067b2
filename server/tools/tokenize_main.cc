// attune-tokenize: prints the token ids that attune's tokenizer gives each line of text, for
// people debugging their data.
//
//   attune-tokenize TOKENIZER_JSON [--no-special] < lines.txt
//       One output line per input line: the ids, space-separated, including the special tokens
//       the post-processor adds (CLS/SEP, BOS...) unless --no-special is given.
//   attune-tokenize --train-bpe VOCAB_SIZE < corpus.txt > tokenizer.json
//       Trains a byte-level BPE vocabulary (see TrainByteLevelBpeJson) on the corpus lines.
//
// Exit status: 0 on success, 2 on bad arguments or a tokenizer file that cannot be loaded.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "server/engine/tokenizer/tokenizer.h"

namespace {

struct Options {
  std::string tokenizer_path;  // tokenizer.json to encode with
  attune::engine::SpecialTokens special = attune::engine::SpecialTokens::kAdd;
  int train_vocab_size = 0;  // > 0: train a BPE instead of encoding
};

constexpr char kUsage[] =
    "usage: attune-tokenize TOKENIZER_JSON [--no-special] < lines\n"
    "       attune-tokenize --train-bpe VOCAB_SIZE < corpus > tokenizer.json\n";

int Encode(const Options& options) {
  auto tokenizer = attune::engine::Tokenizer::FromFile(options.tokenizer_path);
  if (!tokenizer.ok()) {
    std::cerr << "attune-tokenize: " << tokenizer.status().message() << "\n";
    return 2;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    attune::engine::Encoding e = (*tokenizer)->Encode(line, options.special);
    for (size_t i = 0; i < e.ids.size(); ++i) {
      if (i > 0) std::cout << ' ';
      std::cout << e.ids[i];
    }
    std::cout << '\n';
  }
  return 0;
}

int Train(const Options& options) {
  std::vector<std::string> corpus;
  for (std::string line; std::getline(std::cin, line);) corpus.push_back(line);
  std::cout << attune::engine::TrainByteLevelBpeJson(corpus, options.train_vocab_size) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  Options options;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--no-special") {
      options.special = attune::engine::SpecialTokens::kOmit;
    } else if (args[i] == "--train-bpe" && i + 1 < args.size()) {
      options.train_vocab_size = std::atoi(args[++i].c_str());
      if (options.train_vocab_size <= 0) {
        std::cerr << "attune-tokenize: --train-bpe needs a positive vocabulary size\n" << kUsage;
        return 2;
      }
    } else if (args[i] == "-h" || args[i] == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (options.tokenizer_path.empty() && args[i].rfind("--", 0) != 0) {
      options.tokenizer_path = args[i];
    } else {
      std::cerr << "attune-tokenize: unexpected argument '" << args[i] << "'\n" << kUsage;
      return 2;
    }
  }
  if (options.train_vocab_size > 0) return Train(options);
  if (options.tokenizer_path.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  return Encode(options);
}
