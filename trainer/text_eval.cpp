#include "trainer/text_eval.h"

#include <chrono>

#include "core/error.h"
#include "core/log.h"
#include "data/corpus_reader.h"

namespace pajama {
namespace {

std::vector<int32_t> tokenize_file(const std::string& path, const Tokenizer& tok, const TextEvalOptions& o,
                                   int64_t& documents) {
  CorpusReader reader(path);
  RawRecord rec;
  std::string text;
  std::vector<int32_t> ids, doc;
  while (reader.next(rec)) {
    if (extract_text(reader.format(), rec.data, o.text_key, text) != RecordError::kNone) continue;
    if (o.add_bos && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
    doc.clear();
    tok.encode(text, doc);
    ids.insert(ids.end(), doc.begin(), doc.end());
    if (o.add_eos && tok.eos_id() >= 0) ids.push_back(tok.eos_id());
    ++documents;
  }
  return ids;
}

// Sum of the next-token cross-entropies of a batch of equal-length windows (B, T + 1).
double window_loss_sum(Llama& model, const torch::Tensor& windows) {
  const int64_t t = windows.size(1) - 1;
  const torch::Tensor logits = model->forward(windows.narrow(1, 0, t)).to(torch::kFloat32);
  const torch::Tensor targets = windows.narrow(1, 1, t);
  return torch::nn::functional::cross_entropy(
             logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
             torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
      .item<double>();
}

}  // namespace

TextEvalResult evaluate_text_files(Llama& model, const Tokenizer& tokenizer, const std::vector<std::string>& files,
                                   const TextEvalOptions& o, Communicator& comm) {
  PAJAMA_CHECK_AS(ConfigError, o.seq_len >= 1 && o.seq_len <= model->config().max_seq_len, "--seq-len ", o.seq_len,
                  " must be in [1, model.max_seq_len = ", model->config().max_seq_len, "]");
  PAJAMA_CHECK_AS(ConfigError, o.batch_size >= 1, "--batch-size must be positive, got ", o.batch_size);
  PAJAMA_CHECK_AS(ConfigError, tokenizer.vocab_size() <= model->config().vocab_size, "the tokenizer has ",
                  tokenizer.vocab_size(), " pieces, the model's vocabulary ", model->config().vocab_size);
  torch::NoGradGuard no_grad;
  const torch::Device device = model->parameters().front().device();
  const int64_t rank = comm.rank(), ranks = comm.size(), L = o.seq_len;
  TextEvalResult result;
  auto last_report = std::chrono::steady_clock::now();
  double total_sum = 0;
  for (size_t f = 0; f < files.size(); ++f) {
    TextEvalFile file;
    file.path = files[f];
    const std::vector<int32_t> ids = tokenize_file(files[f], tokenizer, o, file.documents);
    const auto n = static_cast<int64_t>(ids.size());
    const int64_t windows = n >= 2 ? (n - 2) / L + 1 : 0;  // window i starts at i*L and needs 2+ tokens
    const torch::Tensor all = torch::from_blob(const_cast<int32_t*>(ids.data()), {n}, torch::kInt32);
    double sum = 0;
    std::vector<torch::Tensor> batch;
    const auto flush = [&] {
      if (batch.empty()) return;
      sum += window_loss_sum(model, torch::stack(batch).to(device, torch::kInt64));
      batch.clear();
    };
    for (int64_t i = rank; i < windows; i += ranks) {
      const int64_t len = std::min(L + 1, n - i * L);
      if (len != L + 1) flush();  // the short last window goes alone
      batch.push_back(all.narrow(0, i * L, len));
      if (static_cast<int64_t>(batch.size()) == o.batch_size || len != L + 1) flush();
      if (std::chrono::steady_clock::now() - last_report > std::chrono::seconds(10)) {
        log_info("eval: ", files[f], " window ", i + 1, " of ", windows, " (file ", f + 1, " of ", files.size(), ")");
        last_report = std::chrono::steady_clock::now();
      }
    }
    flush();
    torch::Tensor sums = torch::tensor({sum}, torch::kFloat64);
    if (ranks > 1) {
      torch::Tensor t = comm.device().is_cuda() ? sums.to(torch::kFloat32).to(comm.device()) : sums;
      CommSite site("eval: text loss");
      comm.all_reduce(t, ReduceOp::kSum);
      sums = t.to(torch::kCPU, torch::kFloat64);
    }
    file.predicted = std::max<int64_t>(0, n - 1);
    file.loss = file.predicted > 0 ? sums[0].item<double>() / static_cast<double>(file.predicted) : 0;
    total_sum += sums[0].item<double>();
    result.predicted += file.predicted;
    result.files.push_back(file);
  }
  result.loss = result.predicted > 0 ? total_sum / static_cast<double>(result.predicted) : 0;
  return result;
}

}  // namespace pajama
