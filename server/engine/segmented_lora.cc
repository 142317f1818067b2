#include "server/engine/segmented_lora.h"

#include <algorithm>

namespace attune::engine {
namespace {

thread_local const AdapterGroup* active_group = nullptr;

bool HasLora(const AdaptedLinearImpl* site) { return site->kind() == AdapterKind::kLora; }

// Each member's adapter input: its rows of `x`, through its own dropout in training.
std::vector<torch::Tensor> AdapterInputs(const torch::Tensor& x, const std::vector<int64_t>& rows,
                                         const std::vector<const AdaptedLinearImpl*>& sites,
                                         bool training) {
  std::vector<torch::Tensor> inputs;
  int64_t begin = 0;
  for (size_t j = 0; j < rows.size(); ++j) {
    torch::Tensor h = x.narrow(0, begin, rows[j]);
    if (training && HasLora(sites[j]) && sites[j]->dropout() > 0) {
      h = torch::dropout(h, sites[j]->dropout(), /*train=*/true);
    }
    inputs.push_back(h);
    begin += rows[j];
  }
  return inputs;
}

// Equal row counts: one batched GEMM pair over the members, adapters padded to the largest rank.
// `x` is the members' inputs in one tensor when none was dropped out (a view then, no copy). A
// member's A and B go in as they are (padded only when its rank is smaller), stacked, then cast
// once: a fixed number of kernels whatever the number of members.
torch::Tensor BatchedDelta(const torch::Tensor& x, const std::vector<torch::Tensor>& inputs,
                           const GroupSite& group, int64_t rank, const torch::Tensor& y) {
  const std::vector<const AdaptedLinearImpl*>& sites = group.members;
  const auto dtype = inputs[0].scalar_type();
  const int64_t in = inputs[0].size(-1);
  const int64_t members = static_cast<int64_t>(sites.size());
  if (!group.scales.defined()) {  // the first step of these members
    std::vector<float> scales;
    for (const AdaptedLinearImpl* site : sites) scales.push_back(HasLora(site) ? site->scale() : 0);
    const auto fp32 = inputs[0].options().dtype(torch::kFloat32);
    group.scales = torch::tensor(scales).to(fp32).to(dtype).view({members, 1, 1});
    group.zero_a = torch::zeros({rank, in}, fp32);
    group.zero_b = torch::zeros({y.size(-1), rank}, fp32);
  }
  std::vector<torch::Tensor> a_list, b_list;
  for (const AdaptedLinearImpl* site : sites) {
    if (!HasLora(site)) {
      a_list.push_back(group.zero_a);
      b_list.push_back(group.zero_b);
      continue;
    }
    const int64_t pad = rank - site->lora_a().size(0);
    a_list.push_back(pad == 0 ? site->lora_a()
                              : torch::constant_pad_nd(site->lora_a(), {0, 0, 0, pad}));
    b_list.push_back(pad == 0 ? site->lora_b() : torch::constant_pad_nd(site->lora_b(), {0, pad}));
  }
  const torch::Tensor a = torch::stack(a_list).to(dtype);  // [members, rank, in]
  const torch::Tensor b = torch::stack(b_list).to(dtype);  // [members, out, rank]
  const torch::Tensor h = (x.defined() ? x : torch::stack(inputs)).reshape({members, -1, in});
  const torch::Tensor delta = torch::bmm(torch::bmm(h, a.transpose(1, 2)), b.transpose(1, 2));
  return (delta * group.scales).reshape(y.sizes());
}

// Different row counts: each member's pair of GEMMs on its rows (zeros without an adapter).
torch::Tensor LoopedDelta(const std::vector<torch::Tensor>& inputs,
                          const std::vector<const AdaptedLinearImpl*>& sites,
                          const torch::Tensor& y, const std::vector<int64_t>& rows) {
  std::vector<torch::Tensor> deltas;
  int64_t begin = 0;
  for (size_t j = 0; j < sites.size(); ++j) {
    const torch::Tensor& h = inputs[j];
    if (HasLora(sites[j])) {
      const auto dtype = h.scalar_type();
      deltas.push_back(torch::linear(torch::linear(h, sites[j]->lora_a().to(dtype)),
                                     sites[j]->lora_b().to(dtype)) *
                       sites[j]->scale());
    } else {
      deltas.push_back(torch::zeros_like(y.narrow(0, begin, rows[j])));
    }
    begin += rows[j];
  }
  return torch::cat(deltas, 0);
}

}  // namespace

AdapterGroup MatchProjections(const std::vector<Model*>& models, const std::vector<int64_t>& rows) {
  AdapterGroup group;
  group.rows = rows;
  std::vector<std::vector<AdaptedLinearImpl*>> projections;
  for (Model* model : models) projections.push_back(model->Projections());
  for (size_t i = 0; i < projections[0].size(); ++i) {
    GroupSite& site = group.sites[projections[0][i]];
    for (const auto& p : projections) site.members.push_back(p[i]);
  }
  return group;
}

AdapterGroupScope::AdapterGroupScope(const AdapterGroup* group) : previous_(active_group) {
  active_group = group;
}

AdapterGroupScope::~AdapterGroupScope() { active_group = previous_; }

const AdapterGroup* ActiveAdapterGroup() { return active_group; }

const GroupSite* ActiveGroupSite(const AdaptedLinearImpl* driver) {
  if (active_group == nullptr) return nullptr;
  auto it = active_group->sites.find(driver);
  return it == active_group->sites.end() ? nullptr : &it->second;
}

torch::Tensor AddGroupAdapters(const torch::Tensor& x, const torch::Tensor& y,
                               const std::vector<int64_t>& rows, const GroupSite& group,
                               bool training) {
  const std::vector<const AdaptedLinearImpl*>& sites = group.members;
  int64_t rank = 0;
  for (const AdaptedLinearImpl* site : sites) {
    if (HasLora(site)) rank = std::max(rank, site->lora_a().size(0));
  }
  if (rank == 0) return y;  // no member adapts this projection
  const std::vector<torch::Tensor> inputs = AdapterInputs(x, rows, sites, training);
  const bool dropped = training && std::any_of(sites.begin(), sites.end(), [](const auto* s) {
                         return HasLora(s) && s->dropout() > 0;
                       });
  const bool equal_rows =
      std::all_of(rows.begin(), rows.end(), [&](int64_t r) { return r == rows[0]; });
  if (!equal_rows) return y + LoopedDelta(inputs, sites, y, rows).to(y.scalar_type());
  const torch::Tensor whole = dropped ? torch::Tensor() : x.contiguous();
  const torch::Tensor delta = BatchedDelta(whole, inputs, group, rank, y);
  return y + delta.to(y.scalar_type());
}

}  // namespace attune::engine
