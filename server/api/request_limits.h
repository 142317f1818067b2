// Size limits on what a client may send, checked in the gRPC layer before anything is built
// from a request, and the one way error messages quote what a client sent.
//
// gRPC accepts messages up to 4 MB, so without these a 3 MB job name is stored and every later
// ListJobs answer that carries it fails; and a 1 MB job id quoted back in an error makes the
// client reject the response's metadata. Every string, map and repeated field of
// CreateJobRequest has a limit here; ids and page tokens have one too. The limits are far above
// any real use (a job id is 18 characters, a path at most PATH_MAX).
//
// Plain functions of their arguments: thread-safe.
#ifndef ATTUNE_SERVER_API_REQUEST_LIMITS_H_
#define ATTUNE_SERVER_API_REQUEST_LIMITS_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "attune/v1/attune.pb.h"

namespace attune::api {

// The largest request message attuned accepts (gRPC's own default, set explicitly in
// server/main.cc so that it is a decision, not an accident): a bigger one gets gRPC's
// RESOURCE_EXHAUSTED before it is parsed. The largest real request, a CreateJobRequest at every
// limit below, is about 100 KB.
inline constexpr int kMaxRequestBytes = 4 << 20;
inline constexpr size_t kMaxRequestIdLength = 128;
inline constexpr size_t kMaxJobIdLength = 64;
inline constexpr size_t kMaxPageTokenLength = 32;
inline constexpr size_t kMaxNameLength = 1024;
inline constexpr size_t kMaxPathLength = 4096;
inline constexpr size_t kMaxLabels = 64;
inline constexpr size_t kMaxLabelKeyLength = 128;
inline constexpr size_t kMaxLabelValueLength = 1024;
inline constexpr size_t kMaxTargets = 16;
inline constexpr size_t kMaxLrRatios = 16;
inline constexpr size_t kMaxLabelSelectors = 16;        // ListJobsRequest.label_selector entries
inline constexpr size_t kMaxProjectionNameLength = 32;  // a target or an lr_ratios key
// What an error message quotes of a client's text at most (then "...").
inline constexpr size_t kMaxQuotedLength = 200;
// What an error message is at most, whatever it quotes (then "..."); ToGrpcStatus applies it.
inline constexpr size_t kMaxMessageLength = 2048;

// `text` as an error message may quote it: unchanged up to `max_length` bytes, else its first
// `max_length` bytes followed by "...".
std::string Abbreviate(absl::string_view text, size_t max_length = kMaxQuotedLength);

// OK, or INVALID_ARGUMENT naming the first field over its limit and the limit, e.g.
// "name: 3145728 characters; at most 1024 allowed", "labels: 10000 entries; at most 64 allowed".
// Checks only sizes: JobSpecFromProto and ValidateJobSpecFields check the values.
absl::Status CheckCreateJobRequestSizes(const v1::CreateJobRequest& request);

// OK for a non-empty id of at most kMaxJobIdLength characters; else INVALID_ARGUMENT
// ("job_id: required", "job_id: 1048576 characters; at most 64 allowed").
absl::Status CheckJobId(const std::string& job_id);

// OK for a page token of at most kMaxPageTokenLength characters; else INVALID_ARGUMENT.
absl::Status CheckPageToken(const std::string& page_token);

// ListJobsRequest.label_selector as (key, value) pairs, in order. INVALID_ARGUMENT for more than
// kMaxLabelSelectors entries, an entry without '=' or with an empty key ("label_selector: 'x' is
// not key=value"), or a key or value over the labels' limits.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseLabelSelector(
    const google::protobuf::RepeatedPtrField<std::string>& selector);

}  // namespace attune::api

#endif  // ATTUNE_SERVER_API_REQUEST_LIMITS_H_
