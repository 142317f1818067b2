// Fuzz target: the C++ half of chat records (server/engine/chat/).
//   1. tokenizer_config.json's chat template and special tokens (ChatTemplateFromTexts): the
//      input is the file.
//   2. A rendered conversation and its trained spans tokenized into ids and the assistant mask
//      (TokenizeRendered), with a byte-level BPE tokenizer (the tokenizer_json corpus's
//      byte_level_bpe.json, read once): the input's first byte gives the number of spans (0..3),
//      the next bytes their boundaries (sorted, within the text), the rest is the text.
// The Jinja rendering itself runs outside attuned, in Debian's python3-jinja2 with transformers'
// sandbox (render_helper.py), so its robustness is jinja2's; a template that raises or uses what
// the sandbox refuses fails the job at CreateJob (chat_examples_test, chat_renderer_test).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/engine/chat/chat_template.h"
#include "server/engine/chat/chat_tokens.h"
#include "server/engine/tokenizer/tokenizer.h"

namespace {

const attune::engine::Tokenizer& FuzzTokenizer() {
  static const attune::engine::Tokenizer* tokenizer = [] {
    std::ifstream in(ATTUNE_FUZZ_TOKENIZER);
    const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto made = attune::engine::Tokenizer::FromJson(json);
    if (!made.ok()) std::abort();  // the corpus file is ours: a broken one is a build error
    return made->release();
  }();
  return *tokenizer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  attune::chat::ChatTemplateFromTexts(input, "", "tokenizer_config.json").IgnoreError();
  if (size == 0) return 0;
  const size_t boundaries = 2 * (data[0] % 4);
  if (size < 1 + boundaries) return 0;
  const std::string text = input.substr(1 + boundaries);
  std::vector<size_t> at;
  for (size_t i = 0; i < boundaries; ++i) at.push_back(data[1 + i] * text.size() / 255);
  std::sort(at.begin(), at.end());
  std::vector<std::pair<size_t, size_t>> spans;
  for (size_t i = 0; i + 1 < at.size(); i += 2) spans.emplace_back(at[i], at[i + 1]);
  attune::chat::ChatTokens tokens = attune::chat::TokenizeRendered(FuzzTokenizer(), text, spans);
  if (tokens.ids.size() != tokens.mask.size()) std::abort();
  return 0;
}
