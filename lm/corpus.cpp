#include "reel/lm/corpus.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <stdexcept>

#include "reel/data/video_file.hpp"  // Sha256, kContentHashAttribute
#include "reel/dist/require.hpp"
#include "reel/model/seed.hpp"

namespace reel {
namespace {

constexpr const char* kWhat = "text corpus";
constexpr const char* kFormat = "reel-text";

// A uniform draw in [0, n) from the stream `key` of the seed.
int64_t draw(uint64_t seed, uint64_t key, uint64_t i, int64_t n) {
  return static_cast<int64_t>(mix_seed(seed, key, i) % static_cast<uint64_t>(n));
}

// The invented language of a seed: its words (token ids, 2 to 6 letters) and each
// word's successors.
struct Language {
  std::vector<std::vector<int64_t>> words;
  std::vector<std::vector<int64_t>> next;
};

Language language(const CorpusSpec& s) {
  Language lang;
  for (int64_t w = 0; w < s.words; ++w) {
    std::vector<int64_t> word;
    const int64_t length = 2 + draw(s.seed, 1, w, 5);
    for (int64_t c = 0; c < length; ++c) word.push_back(2 + draw(s.seed, 2, w * 16 + c, 26));
    lang.words.push_back(word);
    std::vector<int64_t> next;
    for (int64_t k = 0; k < s.successors; ++k) next.push_back(draw(s.seed, 3, w * 16 + k, s.words));
    lang.next.push_back(next);
  }
  return lang;
}

}  // namespace

void CorpusSpec::validate() const {
  const Require need{"text corpus: "};
  need(samples >= 1, "--samples must be >= 1");
  need(seq_len >= 1, "--seq-len must be >= 1");
  need(words >= 2 && successors >= 1, "the language needs >= 2 words and >= 1 successor each");
}

at::Tensor corpus_sample(const CorpusSpec& spec, int64_t index) {
  static thread_local std::pair<std::pair<uint64_t, int64_t>, Language> cache{{~0ull, -1}, {}};
  if (cache.first != std::make_pair(spec.seed, spec.words * 1000 + spec.successors)) {
    cache = {{spec.seed, spec.words * 1000 + spec.successors}, language(spec)};
  }
  const Language& lang = cache.second;
  // The sample's own stream: a first word, then the chain; a sentence ends after 3-8 words.
  const uint64_t stream = mix_seed(spec.seed, 4, static_cast<uint64_t>(index));
  auto ids = at::empty({spec.seq_len + 1}, at::kLong);
  auto* out = ids.data_ptr<int64_t>();
  int64_t n = 0, word = draw(stream, 5, 0, spec.words), in_sentence = 0, step = 0;
  int64_t sentence = 3 + draw(stream, 6, 0, 6);
  const int64_t skip = draw(stream, 7, 0, 8);  // start inside the text, not at a word
  for (int64_t emitted = 0; n < spec.seq_len + 1; ++step) {
    std::vector<int64_t> piece = lang.words[word];
    if (++in_sentence == sentence) {
      piece.push_back(1);  // '.'
      in_sentence = 0;
      sentence = 3 + draw(stream, 6, step, 6);
    }
    piece.push_back(0);  // ' '
    for (int64_t c : piece) {
      if (emitted++ >= skip && n < spec.seq_len + 1) out[n++] = c;
    }
    word = lang.next[word][draw(stream, 8, step, spec.successors)];
  }
  return ids;
}

std::string decode_tokens(const at::Tensor& ids) {
  const auto flat = ids.to(at::kLong).contiguous().view({-1});
  std::string text;
  for (int64_t i = 0; i < flat.numel(); ++i) {
    const int64_t id = flat[i].item<int64_t>();
    text += id >= 0 && id < kAlphabetSize ? kAlphabet[id] : '?';
  }
  return text;
}

void write_corpus(const std::string& path, const CorpusSpec& spec) {
  spec.validate();
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  H5Id file = create_hdf5_file(kWhat, path);
  H5Id tokens = create_row_dataset(file.get(), kWhat, path, "/tokens", H5T_STD_U8LE,
                                   {hsize_t(spec.samples), hsize_t(spec.seq_len + 1)});
  Sha256 hash;
  for (int64_t i = 0; i < spec.samples; ++i) {
    auto row = corpus_sample(spec, i).to(at::kByte).contiguous();
    if (!transfer_row(tokens.get(), H5T_NATIVE_UINT8, i, row.data_ptr(), true)) {
      fail_file(kWhat, path, "cannot write sample " + std::to_string(i));
    }
    hash.update(row.data_ptr(), row.numel());
  }
  const std::string provenance = "reel data --kind text (seed " + std::to_string(spec.seed) + ", " +
                                 std::to_string(spec.words) + " words, " + std::to_string(spec.successors) +
                                 " successors each)";
  if (!write_attribute(file.get(), "format", std::string(kFormat)) ||
      !write_attribute(file.get(), "schema_version", int64_t{kTextSchemaVersion}) ||
      !write_attribute(file.get(), "vocab", kAlphabetSize) ||
      !write_attribute(file.get(), "alphabet", std::string(kAlphabet)) ||
      !write_attribute(file.get(), "provenance", provenance) ||
      !write_attribute(file.get(), kContentHashAttribute, hash.hex_digest())) {
    fail_file(kWhat, path, "cannot write the file's attributes");
  }
  tokens.reset();
  if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) fail_file(kWhat, path, "cannot flush (disk full?)");
}

CorpusReader::CorpusReader(const std::string& path) {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  info_.path = path;
  file_ = open_hdf5_read(kWhat, path);
  std::string format;
  int64_t version = -1;
  if (!read_attribute(file_.get(), "format", format) || format != kFormat) {
    fail_file(kWhat, path,
              std::string("not a reel text corpus (no format = \"") + kFormat +
                  "\" attribute; reel data --kind text writes one)");
  }
  read_attribute(file_.get(), "schema_version", version);
  if (version != kTextSchemaVersion) {
    fail_file(kWhat, path,
              "schema_version " + std::to_string(version) + " (expected " + std::to_string(kTextSchemaVersion) + ")");
  }
  std::vector<hsize_t> dims;
  tokens_ = open_checked_dataset(file_.get(), kWhat, path, "/tokens", 2, "uint8", dims);
  if (dims[1] < 2) fail_file(kWhat, path, "/tokens rows must hold at least 2 tokens");
  if (!read_attribute(file_.get(), "vocab", info_.vocab) || info_.vocab < 2 || info_.vocab > 256) {
    fail_file(kWhat, path, "no vocab attribute in [2, 256]");
  }
  info_.samples = static_cast<int64_t>(dims[0]);
  info_.seq_len = static_cast<int64_t>(dims[1]) - 1;
  info_.checksums = has_fletcher32(tokens_.get());
  read_attribute(file_.get(), kContentHashAttribute, info_.content_sha256);
}

CorpusReader::~CorpusReader() {
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  tokens_.reset();
  file_.reset();
}

Samples CorpusReader::read_samples(const std::vector<int64_t>& indices) {
  const int64_t b = static_cast<int64_t>(indices.size());
  auto rows = at::empty({b, info_.seq_len + 1}, at::kByte);
  std::lock_guard<std::mutex> lock(hdf5_mutex());
  for (int64_t n = 0; n < b; ++n) {
    const int64_t i = indices[n];
    if (i < 0 || i >= info_.samples) {
      fail_file(kWhat, info_.path,
                "sample " + std::to_string(i) + " is outside [0, " + std::to_string(info_.samples) + ")");
    }
    std::string why;
    if (!transfer_row(tokens_.get(), H5T_NATIVE_UINT8, i, rows[n].data_ptr(), false, &why)) {
      fail_file(kWhat, info_.path,
                "sample " + std::to_string(i) + " is damaged: " +
                    (why.find("checksum") != std::string::npos ? "it fails its checksum" : "it cannot be read") +
                    (why.empty() ? "" : " [HDF5: " + why + "]"));
    }
  }
  auto ids = rows.to(at::kLong);
  if (b > 0 && ids.max().item<int64_t>() >= info_.vocab) {
    fail_file(kWhat, info_.path, "a token id is >= the vocabulary size " + std::to_string(info_.vocab));
  }
  return {{"tokens", ids}};
}

std::string CorpusReader::compute_content_sha256() {
  Sha256 hash;
  for (int64_t i = 0; i < info_.samples; ++i) {
    auto row = read_samples({i}).at("tokens").to(at::kByte).contiguous();
    hash.update(row.data_ptr(), row.numel());
  }
  return hash.hex_digest();
}

}  // namespace reel
