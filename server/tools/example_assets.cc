#include "server/tools/example_assets.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/engine/safetensors.h"
#include "server/engine/tokenizer/tokenizer.h"

namespace attune {
namespace {

namespace fs = std::filesystem;
using engine::DType;
using engine::TensorEntry;
using nlohmann::json;

// Shape of the example model. Small enough that the example job runs in seconds on 2 cores.
struct ExampleShape {
  int hidden = 128;
  int layers = 4;
  int heads = 4;
  int intermediate = 512;
  int max_positions = 130;  // 128 tokens + RoBERTa's padding offset of 2
  int vocab = 512;          // tokenizer vocabulary target
  int num_labels = 2;
};

struct Sentence {
  std::string text;
  std::string label;
};

// Draws `count` labelled sentences from fixed word lists.
std::vector<Sentence> MakeSentences(int count, uint64_t seed) {
  static const std::vector<std::string> kSubjects = {
      "the movie",  "this film",     "the show",    "that book", "the food",
      "our trip",   "the concert",   "the game",    "this song", "the service",
      "the hotel",  "her new album", "the lecture", "his story", "the weather",
      "the ending", "the actors",    "the music",   "the plot",  "the restaurant"};
  static const std::vector<std::string> kVerbs = {"was",    "is",      "felt",      "seemed",
                                                  "looked", "sounded", "turned out"};
  static const std::vector<std::string> kIntensifiers = {"",       "really ", "very ", "quite ",
                                                         "truly ", "rather ", "so "};
  static const std::vector<std::string> kPositive = {
      "great",     "wonderful", "fun",       "lovely",    "brilliant",
      "excellent", "amazing",   "pleasant",  "superb",    "delightful",
      "charming",  "fantastic", "beautiful", "enjoyable", "good"};
  static const std::vector<std::string> kNegative = {
      "awful",   "boring", "terrible", "dull",  "horrible", "bad",           "poor", "dreadful",
      "painful", "weak",   "messy",    "bland", "annoying", "disappointing", "ugly"};
  static const std::vector<std::string> kTails = {
      "", " today", " overall", " to me", " in the end", " again", " as usual"};
  std::mt19937_64 rng(seed);
  auto pick = [&rng](const std::vector<std::string>& v) -> const std::string& {
    return v[rng() % v.size()];
  };
  std::vector<Sentence> out;
  for (int i = 0; i < count; ++i) {
    const bool positive = rng() % 2 == 0;
    const auto& words = positive ? kPositive : kNegative;
    std::string text =
        absl::StrCat(pick(kSubjects), " ", pick(kVerbs), " ", pick(kIntensifiers), pick(words));
    if (rng() % 2 == 0) absl::StrAppend(&text, " and ", pick(words));
    absl::StrAppend(&text, pick(kTails));
    if (rng() % 4 == 0) text[0] = static_cast<char>(std::toupper(text[0]));
    out.push_back({text, positive ? "positive" : "negative"});
  }
  return out;
}

void WriteJsonl(const fs::path& path, const std::vector<Sentence>& sentences) {
  std::ofstream out(path);
  for (const Sentence& s : sentences)
    out << json{{"text", s.text}, {"label", s.label}}.dump() << "\n";
}

// Weights with Hugging Face's RoBERTa initialisation: normal(0, 0.02) matrices and embeddings,
// zero biases, unit LayerNorm weights.
class WeightWriter {
 public:
  explicit WeightWriter(uint64_t seed) : rng_(seed) {}

  void Normal(const std::string& name, std::vector<int64_t> shape, float std = 0.02f) {
    std::normal_distribution<float> dist(0.0f, std);
    Add(name, std::move(shape), [&] { return dist(rng_); });
  }
  void Constant(const std::string& name, std::vector<int64_t> shape, float value) {
    Add(name, std::move(shape), [value] { return value; });
  }

  absl::Status Write(const std::string& path) {
    std::vector<TensorEntry> entries;
    for (size_t i = 0; i < names_.size(); ++i) {
      entries.push_back({names_[i], DType::kF32, shapes_[i], buffers_[i].data(),
                         buffers_[i].size() * sizeof(float)});
    }
    return engine::WriteSafetensors(path, entries, {{"format", "pt"}});
  }

 private:
  template <typename F>
  void Add(const std::string& name, std::vector<int64_t> shape, F draw) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> values(static_cast<size_t>(n));
    for (float& v : values) v = draw();
    names_.push_back(name);
    shapes_.push_back(std::move(shape));
    buffers_.push_back(std::move(values));
  }

  std::mt19937_64 rng_;
  std::vector<std::string> names_;
  std::vector<std::vector<int64_t>> shapes_;
  std::vector<std::vector<float>> buffers_;
};

absl::Status WriteModel(const fs::path& dir, const ExampleShape& s, int64_t vocab) {
  WeightWriter w(/*seed=*/1234);
  const int64_t h = s.hidden;
  w.Normal("roberta.embeddings.word_embeddings.weight", {vocab, h});
  w.Normal("roberta.embeddings.position_embeddings.weight", {s.max_positions, h});
  w.Normal("roberta.embeddings.token_type_embeddings.weight", {1, h});
  w.Constant("roberta.embeddings.LayerNorm.weight", {h}, 1.0f);
  w.Constant("roberta.embeddings.LayerNorm.bias", {h}, 0.0f);
  for (int layer = 0; layer < s.layers; ++layer) {
    const std::string p = absl::StrCat("roberta.encoder.layer.", layer, ".");
    for (const char* m : {"attention.self.query", "attention.self.key", "attention.self.value",
                          "attention.output.dense"}) {
      w.Normal(absl::StrCat(p, m, ".weight"), {h, h});
      w.Constant(absl::StrCat(p, m, ".bias"), {h}, 0.0f);
    }
    w.Constant(p + "attention.output.LayerNorm.weight", {h}, 1.0f);
    w.Constant(p + "attention.output.LayerNorm.bias", {h}, 0.0f);
    w.Normal(p + "intermediate.dense.weight", {s.intermediate, h});
    w.Constant(p + "intermediate.dense.bias", {s.intermediate}, 0.0f);
    w.Normal(p + "output.dense.weight", {h, s.intermediate});
    w.Constant(p + "output.dense.bias", {h}, 0.0f);
    w.Constant(p + "output.LayerNorm.weight", {h}, 1.0f);
    w.Constant(p + "output.LayerNorm.bias", {h}, 0.0f);
  }
  w.Normal("classifier.dense.weight", {h, h});
  w.Constant("classifier.dense.bias", {h}, 0.0f);
  w.Normal("classifier.out_proj.weight", {s.num_labels, h});
  w.Constant("classifier.out_proj.bias", {s.num_labels}, 0.0f);
  return w.Write((dir / "model.safetensors").string());
}

json Config(const ExampleShape& s, int64_t vocab) {
  return json{
      {"architectures", {"RobertaForSequenceClassification"}},
      {"model_type", "roberta"},
      {"vocab_size", vocab},
      {"hidden_size", s.hidden},
      {"num_hidden_layers", s.layers},
      {"num_attention_heads", s.heads},
      {"intermediate_size", s.intermediate},
      {"hidden_act", "gelu"},
      {"hidden_dropout_prob", 0.1},
      {"attention_probs_dropout_prob", 0.1},
      {"max_position_embeddings", s.max_positions},
      {"type_vocab_size", 1},
      {"initializer_range", 0.02},
      {"layer_norm_eps", 1e-5},
      {"pad_token_id", 1},
      {"bos_token_id", 0},
      {"eos_token_id", 2},
      {"position_embedding_type", "absolute"},
      {"classifier_dropout", nullptr},
      {"problem_type", "single_label_classification"},
      {"id2label", {{"0", "negative"}, {"1", "positive"}}},
      {"label2id", {{"negative", 0}, {"positive", 1}}},
      {"torch_dtype", "float32"},
  };
}

}  // namespace

absl::Status WriteExampleAssets(const std::string& out_dir, ExampleSummary* summary) {
  const ExampleShape shape;
  const fs::path out(out_dir);
  const fs::path model_dir = out / "model";
  std::error_code ec;
  fs::create_directories(model_dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("cannot create ", model_dir.string(), ": ", ec.message()));
  const std::vector<Sentence> train = MakeSentences(2000, /*seed=*/7);
  const std::vector<Sentence> validation = MakeSentences(300, /*seed=*/8);
  WriteJsonl(out / "train.jsonl", train);
  WriteJsonl(out / "validation.jsonl", validation);

  std::vector<std::string> corpus;
  for (const Sentence& s : train) corpus.push_back(s.text);
  const std::string tokenizer_json = engine::TrainByteLevelBpeJson(corpus, shape.vocab);
  {
    std::ofstream f(model_dir / "tokenizer.json");
    f << tokenizer_json;
    if (!f) return absl::InternalError("cannot write tokenizer.json");
  }
  auto tokenizer = engine::Tokenizer::FromJson(tokenizer_json);
  if (!tokenizer.ok()) return tokenizer.status();
  const int64_t vocab = (*tokenizer)->VocabSize();
  {
    std::ofstream f(model_dir / "config.json");
    f << Config(shape, vocab).dump(2) << "\n";
    if (!f) return absl::InternalError("cannot write config.json");
  }
  absl::Status written = WriteModel(model_dir, shape, vocab);
  if (!written.ok()) return written;
  if (summary != nullptr) {
    summary->vocab_size = vocab;
    summary->train_examples = static_cast<int64_t>(train.size());
    summary->validation_examples = static_cast<int64_t>(validation.size());
  }
  return absl::OkStatus();
}

}  // namespace attune
