// Small checked accessors for reading tokenizer.json with nlohmann::json.
//
// Each accessor names the component and field in its INVALID_ARGUMENT message, e.g.
// "model BPE: field 'vocab' must be an object". All functions are pure and thread-safe; returned
// pointers point into the `config` object passed in.
#ifndef ATTUNE_SERVER_ENGINE_TOKENIZER_JSON_FIELDS_H_
#define ATTUNE_SERVER_ENGINE_TOKENIZER_JSON_FIELDS_H_

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/engine/tokenizer/regex.h"

namespace attune::engine::tokenization {

// The "type" string of a component object; `what` is e.g. "normalizer".
absl::StatusOr<std::string> TypeOf(const nlohmann::json& config, const std::string& what);
// `config[key]` when it is an array.
absl::StatusOr<const nlohmann::json*> ArrayField(const nlohmann::json& config,
                                                 const std::string& key, const std::string& what);
// `config[key]` when it is a string.
absl::StatusOr<std::string> StringField(const nlohmann::json& config, const std::string& key,
                                        const std::string& what);
// `config[key]` if it is a boolean, otherwise `default_value` (absent or null).
bool BoolField(const nlohmann::json& config, const std::string& key, bool default_value);
// `config[key]` when it is an integer in 0..max_value, `default_value` when absent or null;
// INVALID_ARGUMENT otherwise (a float or a huge number is never converted: that is undefined).
absl::StatusOr<int> IntField(const nlohmann::json& config, const std::string& key,
                             int default_value, int max_value, const std::string& what);
// `config[key]` when it is an array of integers in 0..max_value, empty when absent or null;
// INVALID_ARGUMENT otherwise, as IntField.
absl::StatusOr<std::vector<int32_t>> IntArrayField(const nlohmann::json& config,
                                                   const std::string& key, int max_value,
                                                   const std::string& what);
// Compiles `config["pattern"]`, which is {"String": literal} or {"Regex": pattern}.
absl::StatusOr<std::unique_ptr<Regex>> PatternField(const nlohmann::json& config,
                                                    const std::string& what);

}  // namespace attune::engine::tokenization

#endif  // ATTUNE_SERVER_ENGINE_TOKENIZER_JSON_FIELDS_H_
