// The language model's data: a synthetic text corpus reel generates, and its HDF5 file.
//
// The text is sentences of a small invented language: `words` words (random letter
// strings, drawn once from the seed) strung together by a sparse Markov chain (each word
// is followed by one of `successors` words), 3 to 8 words to a sentence, ended by ". ".
// A model can learn the spelling of every word (after its first letters, the rest is
// determined) and which words follow which: the loss falls far below the 3.3 nats of a
// uniform guess over the 28 characters, and a model that learnt nothing stays there.
// Each sample is seq_len + 1 characters of that text from a point drawn per sample (a
// function of the seed and the sample's index alone).
//
// File schema (docs/lm.md), version 1:
//   /tokens  uint8 [N, seq_len + 1]  chunked one sample per chunk, Fletcher-32 per chunk
//   attributes on /: format = "reel-text", schema_version (int), vocab (int),
//                    alphabet (string: the character of each token id), provenance
//                    (string), content_sha256 (string: SHA-256 of /tokens' bytes, rows
//                    in order)
// Any HDF5 tool reads it (h5py: f["tokens"][i] are the ids of sample i).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "reel/data/dataset.hpp"
#include "reel/data/hdf5.hpp"

namespace reel {

constexpr int kTextSchemaVersion = 1;
// Token ids: ' ' = 0, '.' = 1, 'a'..'z' = 2..27.
constexpr const char* kAlphabet = " .abcdefghijklmnopqrstuvwxyz";
constexpr int64_t kAlphabetSize = 28;

struct CorpusSpec {
  int64_t samples = 2048;
  int64_t seq_len = 128;  // tokens a model sees per sample (the file holds seq_len + 1)
  int64_t words = 24, successors = 3;
  uint64_t seed = 0;
  void validate() const;  // throws std::invalid_argument naming the field
};

// Sample i of the corpus: seq_len + 1 token ids, int64.
at::Tensor corpus_sample(const CorpusSpec& spec, int64_t index);
// Writes the corpus to `path` in the schema above; throws std::runtime_error naming it.
void write_corpus(const std::string& path, const CorpusSpec& spec);
// Token ids -> text (ids outside the alphabet print as '?').
std::string decode_tokens(const at::Tensor& ids);

struct CorpusInfo {
  std::string path;
  int64_t samples = 0, seq_len = 0, vocab = 0;
  bool checksums = false;
  std::string content_sha256;  // the stored attribute ("" when the file has none)
};

// Reads a corpus file. Opening checks the schema (format, rank, dtype) and throws
// std::runtime_error naming the file; reads name the sample that fails its checksum.
class CorpusReader : public SampleReader {
 public:
  explicit CorpusReader(const std::string& path);
  ~CorpusReader() override;
  const CorpusInfo& info() const { return info_; }
  int64_t sample_count() const override { return info_.samples; }
  // {"tokens": int64 [b, seq_len + 1]}
  Samples read_samples(const std::vector<int64_t>& indices) override;
  // Every sample read, and the SHA-256 of their bytes.
  std::string compute_content_sha256();

 private:
  CorpusInfo info_;
  H5Id file_, tokens_;
};

}  // namespace reel
