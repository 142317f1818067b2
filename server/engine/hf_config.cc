#include "server/engine/hf_config.h"

#include "absl/strings/str_cat.h"
#include "common/confined_file.h"
#include "nlohmann/json.hpp"
#include "server/engine/file_limits.h"

namespace attune::engine {
namespace {

using nlohmann::json;

class Reader {
 public:
  Reader(const json& j, const std::string& source) : j_(j), source_(source) {}

  absl::Status status() const { return status_; }

  int64_t Int(const char* key, int64_t fallback) {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_number_integer()) return Fail(key, "an integer"), fallback;
    return it->get<int64_t>();
  }
  int64_t PositiveInt(const char* key) {
    auto it = j_.find(key);
    if (it == j_.end() || !it->is_number_integer() || it->get<int64_t>() <= 0) {
      Fail(key, "a positive integer");
      return 0;
    }
    return it->get<int64_t>();
  }
  double Number(const char* key, double fallback) {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_number()) return Fail(key, "a number"), fallback;
    return it->get<double>();
  }
  bool Bool(const char* key, bool fallback) {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) return Fail(key, "true or false"), fallback;
    return it->get<bool>();
  }
  std::string String(const char* key, const std::string& fallback) {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return fallback;
    if (!it->is_string()) return Fail(key, "a string"), fallback;
    return it->get<std::string>();
  }

  void Fail(const std::string& key, const std::string& expected) {
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(
          absl::StrCat("config.json (", source_, "): '", key, "' must be ", expected));
    }
  }

 private:
  const json& j_;
  const std::string& source_;
  absl::Status status_;
};

// Reads rope settings from `params` (a rope_parameters or rope_scaling object).
void ReadRope(const json& params, const std::string& source, RopeConfig* rope, Reader* top) {
  Reader r(params, source);
  rope->theta = r.Number("rope_theta", rope->theta);
  rope->type = r.String("rope_type", r.String("type", rope->type));
  rope->factor = r.Number("factor", rope->factor);
  rope->low_freq_factor = r.Number("low_freq_factor", rope->low_freq_factor);
  rope->high_freq_factor = r.Number("high_freq_factor", rope->high_freq_factor);
  rope->original_max_position_embeddings =
      r.Int("original_max_position_embeddings", rope->original_max_position_embeddings);
  if (!r.status().ok()) top->Fail("rope_parameters", "an object of numbers and a rope_type");
}

// A token id that config.json may give as a number, a list (its first id counts) or null.
std::optional<int64_t> TokenId(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) {
    return (*it)[0].get<int64_t>();
  }
  return std::nullopt;
}

// The readers below fill `c` from config.json's object `j`, in order; `r` keeps the first error.

// What the model is: "model_type" (required) and the first of "architectures".
void ReadModelType(const json& j, Reader& r, HfConfig& c) {
  c.model_type = r.String("model_type", "");
  if (c.model_type.empty())
    r.Fail("model_type", "a non-empty string such as \"roberta\" or \"llama\"");
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    c.architecture = j["architectures"][0].get<std::string>();
  }
}

// Sizes, layer and head counts, and the special token ids.
void ReadSizes(const json& j, Reader& r, HfConfig& c) {
  c.vocab_size = r.PositiveInt("vocab_size");
  c.hidden_size = r.PositiveInt("hidden_size");
  c.num_hidden_layers = r.PositiveInt("num_hidden_layers");
  c.num_attention_heads = r.PositiveInt("num_attention_heads");
  c.intermediate_size = r.PositiveInt("intermediate_size");
  c.max_position_embeddings = r.Int("max_position_embeddings", 512);
  c.num_key_value_heads = r.Int("num_key_value_heads", c.num_attention_heads);
  c.head_dim = r.Int("head_dim", 0);
  if (c.head_dim <= 0 && c.num_attention_heads > 0) {
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  c.type_vocab_size = r.Int("type_vocab_size", 2);
  c.pad_token_id = TokenId(j, "pad_token_id");
  c.eos_token_id = TokenId(j, "eos_token_id");
}

// The activation, the norms' epsilons, dropout and the initialisation range.
void ReadNormsAndDropout(const json& j, Reader& r, HfConfig& c) {
  const bool decoder = IsDecoderModelType(c.model_type);
  c.hidden_act = r.String("hidden_act", decoder ? "silu" : "gelu");
  c.layer_norm_eps = r.Number("layer_norm_eps", 1e-12);
  c.rms_norm_eps = r.Number("rms_norm_eps", 1e-6);
  c.hidden_dropout_prob = r.Number("hidden_dropout_prob", 0.1);
  c.attention_probs_dropout_prob = r.Number("attention_probs_dropout_prob", 0.1);
  if (j.contains("classifier_dropout") && j["classifier_dropout"].is_number()) {
    c.classifier_dropout = j["classifier_dropout"].get<double>();
  }
  c.attention_dropout = r.Number("attention_dropout", 0.0);
  c.initializer_range = r.Number("initializer_range", 0.02);
}

// The label count, tied embeddings and the projections' biases.
void ReadHeadAndBiases(const json& j, Reader& r, HfConfig& c) {
  if (j.contains("id2label") && j["id2label"].is_object() && !j["id2label"].empty()) {
    c.num_labels = static_cast<int>(j["id2label"].size());
  }
  c.num_labels = static_cast<int>(r.Int("num_labels", c.num_labels));
  c.tie_word_embeddings = r.Bool("tie_word_embeddings", false);
  c.attention_bias = r.Bool("attention_bias", false);
  c.qkv_bias = c.model_type == "qwen2";
  c.mlp_bias = r.Bool("mlp_bias", false);
}

// "rope_theta", then the rope_scaling (transformers 4) and rope_parameters (5) objects.
void ReadRopeSettings(const json& j, const std::string& source, Reader& r, HfConfig& c) {
  c.rope.theta = r.Number("rope_theta", c.rope.theta);
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_object()) {
      r.Fail(key, "an object");
      continue;
    }
    ReadRope(*it, source, &c.rope, &r);
  }
}

// The rules between fields: a known rope type, a positive factor, whole KV-head groups.
void CheckConsistency(const HfConfig& c, Reader& r) {
  if (c.rope.type != "default" && c.rope.type != "linear" && c.rope.type != "llama3") {
    r.Fail("rope_parameters.rope_type",
           "one of default, linear, llama3 (got \"" + c.rope.type + "\")");
  }
  if (c.rope.factor <= 0) r.Fail("rope_parameters.factor", "positive");
  if (c.num_key_value_heads <= 0 ||
      (c.num_attention_heads > 0 && c.num_attention_heads % c.num_key_value_heads != 0)) {
    r.Fail("num_key_value_heads", "a positive divisor of num_attention_heads");
  }
}

}  // namespace

absl::StatusOr<HfConfig> ParseHfConfig(const std::string& json_text, const std::string& source) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json (", source, "): not a JSON object"));
  }
  Reader r(j, source);
  HfConfig c;
  ReadModelType(j, r, c);
  ReadSizes(j, r, c);
  ReadNormsAndDropout(j, r, c);
  ReadHeadAndBiases(j, r, c);
  ReadRopeSettings(j, source, r, c);
  CheckConsistency(c, r);
  if (!r.status().ok()) return r.status();
  return c;
}

absl::StatusOr<HfConfig> LoadHfConfig(const std::string& model_dir,
                                      const std::vector<std::string>& data_roots) {
  const std::string path = model_dir + "/config.json";
  absl::StatusOr<std::string> text = ReadInsideRoots(data_roots, path, kMaxConfigJsonBytes);
  if (absl::IsNotFound(text.status())) {
    return absl::InvalidArgumentError(absl::StrCat("model '", model_dir, "': no config.json"));
  }
  if (!text.ok())
    return absl::InvalidArgumentError(absl::StrCat("model: ", text.status().message()));
  return ParseHfConfig(*text, path);
}

bool IsDecoderModelType(const std::string& model_type) {
  return model_type == "llama" || model_type == "qwen2" || model_type == "mistral";
}

}  // namespace attune::engine
