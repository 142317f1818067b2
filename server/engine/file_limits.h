// The most bytes the engine reads from each kind of file a job names, checked before the file
// is read into memory (common/confined_file.h, ReadInsideRoots: the size is taken from the open
// descriptor, and a file that grows while it is read stops at the limit).
//
// A job's files come from its creator, and attuned reads each one whole (CheckSpec at CreateJob
// reads them all). Without limits a 50 GB "tokenizer.json", or a JSONL file that is one line of
// 8 GB, is read into the server's memory before anything can look at it. The limits are far
// above what published models and datasets need (sizes of the largest we know, 2026):
//   config.json              a few KB; with 20k id2label entries about 1 MB
//   tokenizer.json           Llama 3 9 MB, Gemma 3 33 MB
//   tokenizer_config.json    up to about 20 MB (added_tokens_decoder of 256k entries)
//   *.safetensors.index.json a few hundred KB for 1,000 shards
//   JSONL data               the largest public instruction sets are about 2 GB; one line (one
//                            conversation of 128k tokens) about 0.5 MB
// Over a limit, INVALID_ARGUMENT names the field, the file, its size and the limit, e.g.
// "train: /d/t.jsonl: 5368709120 bytes; at most 4294967296 allowed".
#ifndef ATTUNE_SERVER_ENGINE_FILE_LIMITS_H_
#define ATTUNE_SERVER_ENGINE_FILE_LIMITS_H_

#include <cstdint>

namespace attune::engine {

inline constexpr int64_t kMaxConfigJsonBytes = int64_t{16} << 20;
inline constexpr int64_t kMaxTokenizerJsonBytes = int64_t{256} << 20;
inline constexpr int64_t kMaxTokenizerConfigBytes = int64_t{64} << 20;
inline constexpr int64_t kMaxChatTemplateBytes = int64_t{16} << 20;  // chat_template.jinja
inline constexpr int64_t kMaxWeightIndexBytes = int64_t{64} << 20;
inline constexpr int64_t kMaxJsonlFileBytes = int64_t{4} << 30;
inline constexpr int64_t kMaxJsonlLineBytes = int64_t{16} << 20;
// The safetensors header (JSON before the tensors) has its own limit, 100 MiB, checked from the
// 8-byte length that precedes it, before it is parsed (safetensors.cc).

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_FILE_LIMITS_H_
