// Package generate turns a language model's next-token logits into text token
// ids the way Hugging Face transformers' `generate` does (greedy search,
// multinomial sampling, beam search and beam sampling, with the repetition
// penalty, no-repeat n-gram, minimum-length, temperature, top-k and top-p
// logits processors), independent of any model: the model is reached through
// the Decoder interface.
//
// Greedy search and beam search reproduce Hugging Face token for token (as of
// transformers 5.x, `GenerationMixin._sample` and `_beam_search`), given the
// same float32 logits. Sampling follows the same processing but draws from a
// seeded PCG source (math/rand/v2), so a seed repeats its output exactly, but
// it does not reproduce torch's random numbers.
//
// # Lengths
//
// The prompt of a row is what Hugging Face calls input_ids inside generate:
// for a decoder-only model the whole prompt (image placeholder tokens, left
// padding and BOS included), for an encoder-decoder model the decoder start
// token. max_length and min_length count that prompt; max_new_tokens and
// min_new_tokens do not. Without max_new_tokens or max_length, 20 new tokens
// are generated (Hugging Face also caps that default at the model's
// max_position_embeddings, which this package does not know). When
// min_new_tokens is set, min_length is ignored, as in Hugging Face.
//
// # Greedy search and sampling
//
// Each step applies the processors to the row's raw logits and takes the
// argmax (lowest index among equal scores, like torch.argmax) or draws from
// the softmax. A row finishes when it emits an EOS token; Hugging Face keeps
// finished rows and pads them with pad_token_id, while Generate drops them
// from the Decoder (Select) so they stop costing work and returns each row's
// ids up to and including its EOS. PadLikeHF rebuilds Hugging Face's
// rectangular output.
//
// # Beam search
//
// Per input, num_beams running beams carry the sum of their tokens'
// processed log probabilities. Each step:
//   - takes log_softmax of each beam's logits (float32), applies the
//     processors to the log probabilities (not the logits), and adds the beam's
//     running score; at the first step only beam 0 counts (the others start at
//     -1e9);
//   - keeps the best K = max(2, 1+#EOS)*num_beams of the num_beams*vocab
//     candidates (torch.topk; equal scores keep the lower flat index first);
//   - marks the candidates that end (last token is an EOS, or the maximum
//     length is reached);
//   - continues with the best num_beams candidates after adding -1e9 to the
//     ended ones;
//   - offers the ended candidates among the first num_beams of the K (an EOS
//     ranked beyond num_beams is ignored) to the num_beams finished slots, with
//     score sum/len^length_penalty, len being the number of generated tokens
//     including the EOS (for decoder-only and encoder-decoder models alike); a
//     batch item whose slots are all full under early_stopping=true, or whose
//     early-stop heuristic is met, accepts nothing more (-1e9 penalties);
//   - updates the heuristic: the best running score divided by
//     (generated length)^length_penalty, or (max_length-prompt)^length_penalty
//     for early_stopping="never" with a positive penalty, must beat the worst
//     finished score for the item to go on.
//
// The finished slots stay sorted by score (ties keep the earlier slot), and
// the first num_return_sequences are returned. A batch item that can accept no
// more hypotheses is dropped from the Decoder; Hugging Face keeps running it,
// which cannot change its output.
package generate
