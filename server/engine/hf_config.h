// The parts of a Hugging Face `config.json` that attune's architectures read, as a plain struct.
//
// `LoadHfConfig` reads the file once and fills in the transformers defaults for absent fields
// (e.g. num_key_value_heads = num_attention_heads, head_dim = hidden_size / num_attention_heads).
// Rope settings are read from either spelling: transformers 4.x (`rope_theta` plus
// `rope_scaling` with "type" or "rope_type") and transformers 5.x (`rope_parameters`).
// Plain C++: no LibTorch, no JSON types in the interface.
#ifndef ATTUNE_SERVER_ENGINE_HF_CONFIG_H_
#define ATTUNE_SERVER_ENGINE_HF_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace attune::engine {

struct RopeConfig {
  double theta = 10000.0;
  std::string type = "default";                     // "default", "linear" or "llama3"
  double factor = 1.0;                              // linear and llama3
  double low_freq_factor = 1.0;                     // llama3
  double high_freq_factor = 4.0;                    // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
};

struct HfConfig {
  std::string model_type;    // "bert", "roberta", "llama", "qwen2", "mistral"
  std::string architecture;  // "architectures"[0]; empty when absent
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // decoders; = num_attention_heads when absent
  int64_t head_dim = 0;             // = hidden_size / num_attention_heads when absent
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 0;
  int64_t type_vocab_size = 2;                // encoders
  std::optional<int64_t> pad_token_id;        // a list in config.json: its first id
  std::optional<int64_t> eos_token_id;        // likewise (Llama 3 lists several)
  std::string hidden_act = "gelu";            // encoders "gelu"; decoders "silu"
  double layer_norm_eps = 1e-12;              // encoders
  double rms_norm_eps = 1e-6;                 // decoders
  double hidden_dropout_prob = 0.1;           // encoders
  double attention_probs_dropout_prob = 0.1;  // encoders
  std::optional<double> classifier_dropout;   // encoders; hidden_dropout_prob when absent
  double attention_dropout = 0.0;             // decoders
  double initializer_range = 0.02;
  int num_labels = 2;                // from "num_labels" or the size of "id2label"
  bool tie_word_embeddings = false;  // decoders
  bool attention_bias = false;       // q/k/v/o biases (Llama "attention_bias")
  bool qkv_bias = false;             // q/k/v biases only (Qwen2)
  bool mlp_bias = false;             // Llama "mlp_bias"
  RopeConfig rope;
};

// True for the decoder families attune loads: "llama", "qwen2", "mistral".
bool IsDecoderModelType(const std::string& model_type);

// Reads `model_dir`/config.json. INVALID_ARGUMENT naming the file and field for a missing or
// malformed file, a missing "model_type", a required size that is absent or not positive, or a
// rope type other than default, linear or llama3, or a config.json outside `data_roots` when it
// is opened (common/confined_file.h; empty = no root restriction). Thread-safe.
absl::StatusOr<HfConfig> LoadHfConfig(const std::string& model_dir,
                                      const std::vector<std::string>& data_roots = {});

// The same, from the JSON text (for tests). `source` names the text in error messages.
absl::StatusOr<HfConfig> ParseHfConfig(const std::string& json_text, const std::string& source);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_HF_CONFIG_H_
