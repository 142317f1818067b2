// Fuzz target: a CreateJobRequest's bytes through what CreateJob does before touching files:
// the size limits, proto-to-spec conversion and the field checks (server/api/).
#include <cstddef>
#include <cstdint>

#include "attune/v1/attune.pb.h"
#include "common/job_spec.h"
#include "server/api/proto_convert.h"
#include "server/api/request_limits.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  attune::v1::CreateJobRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (!attune::api::CheckCreateJobRequestSizes(request).ok()) return 0;
  auto spec = attune::api::JobSpecFromProto(request.spec());
  if (spec.ok()) attune::ValidateJobSpecFields(*spec).IgnoreError();
  return 0;
}
