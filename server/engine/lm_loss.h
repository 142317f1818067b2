// Cross-entropy over a large vocabulary without holding the logits. Internal to the engine.
//
// A causal LM's loss projects every position's final hidden state onto the vocabulary and takes
// the cross-entropy against the next token. Done plainly, a batch of 8 x 2048 tokens over 32000
// words makes [16384, 32000] logits: 1 GiB in bf16, 2 GiB again in fp32 for the softmax, and as
// much again for their gradient. `ChunkedLinearCrossEntropy` does the same arithmetic a block of
// rows at a time. When gradients are wanted, the forward pass forms each block's gradient while
// it holds the block's logits, (softmax - one_hot) / count times the weight, and keeps only that
// [n, h] result for the backward pass (one vocabulary projection per block, not two: nothing is
// recomputed). Without gradients (evaluation) it keeps nothing. The projection weight is frozen
// (the LM head): no gradient is formed for it.
//
// Numerics: the logits are computed in the weight's dtype (bf16 on CUDA, where the head is
// frozen in bf16, as transformers does under autocast) and the softmax in fp32.
#ifndef ATTUNE_SERVER_ENGINE_LM_LOSS_H_
#define ATTUNE_SERVER_ENGINE_LM_LOSS_H_

#include <torch/torch.h>

namespace attune::engine {

// Mean over the rows whose label is not -100 of cross_entropy(hidden W^T, labels).
// hidden: [n, h] (any float dtype; gradients flow to it), weight: [vocab, h] (frozen; no
// gradient), labels: [n] int64. `chunk_rows` = rows per block; 0 picks blocks of about 64M
// logits. Returns a 0-dim fp32 tensor (0 when every label is -100). Thread-compatible.
torch::Tensor ChunkedLinearCrossEntropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                        const torch::Tensor& labels, int64_t chunk_rows = 0);

}  // namespace attune::engine

#endif  // ATTUNE_SERVER_ENGINE_LM_LOSS_H_
