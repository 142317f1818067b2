// Several jobs' LoRA adapters on one frozen base, in one forward pass (shared-base groups,
// group_run.h). Internal to the engine.
//
// A group's step concatenates its members' batches along the batch (row) dimension: member 0's
// rows, then member 1's, and so on. Every frozen projection runs once over all rows; each
// member's adapter applies only to its own rows. The group runs the forward pass of one member's
// model (the "driver"; all members' frozen tensors are the same tensors, frozen_cache.h) inside an
// `AdapterGroupScope`, which tells each of the driver's projections which rows belong to which
// member and where that member's own projection (its A, B, scale, dropout) is.
//
// The adapter product is one batched GEMM pair when every member has the same number of rows:
// x [members, rows x seq, in] times the members' A stacked [members, in, r_max], times their B
// [members, r_max, out], with each A and B padded with zeros to the largest rank r_max, and a
// zero adapter for a member that does not target the projection (a zero product adds nothing:
// the padding changes no value, only the GEMM's summation order). Members with different row
// counts run one pair of GEMMs each on their rows (a loop over members, not over examples).
//
// Gradients reach each member's A and B from its own rows only, so summing the members' losses
// and running one backward pass gives every member its own gradients.
#ifndef ATTUNE_SERVER_ENGINE_SEGMENTED_LORA_H_
#define ATTUNE_SERVER_ENGINE_SEGMENTED_LORA_H_

#include <torch/torch.h>

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "server/engine/lora.h"

namespace attune::engine {

// One projection of the driver: the same projection of each member, and what the batched
// product reuses from step to step while the members stay the same (made at its first use).
struct GroupSite {
  std::vector<const AdaptedLinearImpl*> members;
  mutable torch::Tensor scales;          // [members, 1, 1] fp32: each adapter's scale, 0 for none
  mutable torch::Tensor zero_a, zero_b;  // A and B of a member that does not adapt it
};

// Which rows belong to which member, and each member's projections matched to the driver's.
struct AdapterGroup {
  std::vector<int64_t> rows;  // rows of each member, in order; they sum to the batch's rows
  std::unordered_map<const AdaptedLinearImpl*, GroupSite> sites;  // by the driver's projection
};

// Matches the projections of `models` (same architecture and config; models[0] drives).
AdapterGroup MatchProjections(const std::vector<Model*>& models, const std::vector<int64_t>& rows);

// While alive, the driver's projections on this thread apply `group`'s adapters per member.
class AdapterGroupScope {
 public:
  explicit AdapterGroupScope(const AdapterGroup* group);
  ~AdapterGroupScope();
  AdapterGroupScope(const AdapterGroupScope&) = delete;
  AdapterGroupScope& operator=(const AdapterGroupScope&) = delete;

 private:
  const AdapterGroup* previous_;
};

// The members' projections of `driver` in the active scope, or nullptr (no scope, or a
// projection the scope does not know).
const GroupSite* ActiveGroupSite(const AdaptedLinearImpl* driver);
const AdapterGroup* ActiveAdapterGroup();

// y + each member's adapter on its rows, for the driver's base output `y` [rows, ...,
// out] of input `x` [rows, ..., in] (both in the frozen dtype). `training` turns on each
// member's LoRA dropout.
torch::Tensor AddGroupAdapters(const torch::Tensor& x, const torch::Tensor& y,
                               const std::vector<int64_t>& rows, const GroupSite& site,
                               bool training);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_SEGMENTED_LORA_H_
