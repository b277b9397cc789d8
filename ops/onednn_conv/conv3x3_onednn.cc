// A 3x3, stride 1, padding 1 convolution with bias (float32, NCHW input and output, OIHW
// weight) on CPU through oneDNN, forward and backward, as a Paddle custom operator.
//
// Why: Paddle 3.3.1's dygraph runs conv2d as im2col + GEMM and never dispatches to oneDNN,
// which makes the CPU training step cost ~1.65x the official PyTorch step, whose
// convolutions run in oneDNN (benchmarks/README.md). The Paddle wheel ships oneDNN
// (libs/libdnnl.so.3); this operator calls it directly.
//
// oneDNN chooses the memory formats (format_tag::any, usually channel-blocked such as
// nChw16c on AVX-512); the plain Paddle tensors are reordered to and from them. The
// primitive descriptors, primitives and reorders of a shape are built once and kept in a
// static cache (guarded by a mutex), so that the steps after the first do not JIT again.

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "paddle/extension.h"

namespace {

using dnnl::memory;
using Dims = memory::dims;
using Tag = memory::format_tag;
constexpr memory::data_type kF32 = memory::data_type::f32;

dnnl::engine &cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// A CPU stream is cheap, but one stream must not be used by two threads at once.
dnnl::stream &cpu_stream() {
  static thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

// A reorder from a plain layout to the layout a primitive chose (or back); empty when the
// two layouts are the same and the primitive can use the plain tensor directly.
struct Reorder {
  bool needed = false;
  memory::desc target;
  dnnl::reorder primitive;

  Reorder() = default;
  Reorder(const memory::desc &from, const memory::desc &to) : needed(from != to), target(to) {
    if (needed) {
      primitive = dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), from, cpu_engine(), to));
    }
  }

  // The memory the primitive reads: the plain tensor itself, or a reordered copy of it.
  memory to_primitive(const memory &plain) const {
    if (!needed) return plain;
    memory blocked(target, cpu_engine());
    primitive.execute(cpu_stream(), {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, blocked}});
    return blocked;
  }

  // The memory the primitive writes, to be passed to `from_primitive` afterwards.
  memory scratch_for(const memory &plain) const {
    return needed ? memory(target, cpu_engine()) : plain;
  }
};

// A reorder the other way: primitive layout -> plain tensor.
struct ReorderBack {
  bool needed = false;
  memory::desc source;
  dnnl::reorder primitive;

  ReorderBack() = default;
  ReorderBack(const memory::desc &from, const memory::desc &to) : needed(from != to), source(from) {
    if (needed) {
      primitive = dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), from, cpu_engine(), to));
    }
  }

  memory output_for(const memory &plain) const {
    return needed ? memory(source, cpu_engine()) : plain;
  }

  void finish(const memory &written, const memory &plain) const {
    if (needed) {
      primitive.execute(cpu_stream(), {{DNNL_ARG_FROM, written}, {DNNL_ARG_TO, plain}});
    }
  }
};

struct Plan {
  memory::desc src, weights, bias, dst;  // the plain layouts of the Paddle tensors

  dnnl::convolution_forward forward;
  Reorder fwd_src, fwd_weights;
  ReorderBack fwd_dst;

  dnnl::convolution_backward_data backward_data;
  Reorder bwd_data_diff_dst, bwd_data_weights;
  ReorderBack bwd_data_diff_src;

  dnnl::convolution_backward_weights backward_weights;
  Reorder bwd_weights_src, bwd_weights_diff_dst;
  ReorderBack bwd_weights_diff_weights, bwd_weights_diff_bias;
};

// batch, input channels, height, width, output channels
using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>;

std::shared_ptr<const Plan> make_plan(const Key &key) {
  const auto [n, c, h, w, o] = key;
  auto &engine = cpu_engine();
  const Dims strides = {1, 1}, padding = {1, 1};
  auto plan = std::make_shared<Plan>();
  plan->src = memory::desc({n, c, h, w}, kF32, Tag::nchw);
  plan->weights = memory::desc({o, c, 3, 3}, kF32, Tag::oihw);
  plan->bias = memory::desc({o}, kF32, Tag::x);
  plan->dst = memory::desc({n, o, h, w}, kF32, Tag::nchw);
  const memory::desc any_src({n, c, h, w}, kF32, Tag::any);
  const memory::desc any_weights({o, c, 3, 3}, kF32, Tag::any);
  const memory::desc any_dst({n, o, h, w}, kF32, Tag::any);

  const dnnl::convolution_forward::primitive_desc fwd_pd(
      engine, dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, any_src,
      any_weights, plan->bias, any_dst, strides, padding, padding);
  plan->forward = dnnl::convolution_forward(fwd_pd);
  plan->fwd_src = Reorder(plan->src, fwd_pd.src_desc());
  plan->fwd_weights = Reorder(plan->weights, fwd_pd.weights_desc());
  plan->fwd_dst = ReorderBack(fwd_pd.dst_desc(), plan->dst);

  const dnnl::convolution_backward_data::primitive_desc data_pd(
      engine, dnnl::algorithm::convolution_direct, any_src, any_weights, any_dst, strides,
      padding, padding, fwd_pd);
  plan->backward_data = dnnl::convolution_backward_data(data_pd);
  plan->bwd_data_diff_dst = Reorder(plan->dst, data_pd.diff_dst_desc());
  plan->bwd_data_weights = Reorder(plan->weights, data_pd.weights_desc());
  plan->bwd_data_diff_src = ReorderBack(data_pd.diff_src_desc(), plan->src);

  const dnnl::convolution_backward_weights::primitive_desc weights_pd(
      engine, dnnl::algorithm::convolution_direct, any_src, any_weights, plan->bias, any_dst,
      strides, padding, padding, fwd_pd);
  plan->backward_weights = dnnl::convolution_backward_weights(weights_pd);
  plan->bwd_weights_src = Reorder(plan->src, weights_pd.src_desc());
  plan->bwd_weights_diff_dst = Reorder(plan->dst, weights_pd.diff_dst_desc());
  plan->bwd_weights_diff_weights = ReorderBack(weights_pd.diff_weights_desc(), plan->weights);
  plan->bwd_weights_diff_bias = ReorderBack(weights_pd.diff_bias_desc(), plan->bias);
  return plan;
}

// Training uses a handful of shapes; inference on images of many sizes would add one plan
// per size, so the least recently used plans are dropped past this many.
constexpr size_t kMaxPlans = 64;

std::shared_ptr<const Plan> plan_for(const Key &key) {
  static std::mutex mutex;
  static std::list<std::pair<Key, std::shared_ptr<const Plan>>> plans;  // most recent first
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = plans.begin(); it != plans.end(); ++it) {
    if (it->first == key) {
      plans.splice(plans.begin(), plans, it);
      return plans.front().second;
    }
  }
  plans.emplace_front(key, make_plan(key));
  if (plans.size() > kMaxPlans) plans.pop_back();  // a caller may still hold it: shared_ptr
  return plans.front().second;
}

std::string shape_text(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return text + "]";
}

// Everything the operator cannot take is an error that says what was expected.
void check_inputs(const paddle::Tensor &x, const paddle::Tensor &weight, const paddle::Tensor &bias) {
  const std::pair<const char *, const paddle::Tensor *> tensors[] = {{"x", &x}, {"weight", &weight}, {"bias", &bias}};
  for (const auto &[name, tensor] : tensors) {
    PD_CHECK(tensor->is_cpu(), "conv3x3_onednn: ", name, " must be a CPU tensor");
    PD_CHECK(tensor->dtype() == paddle::DataType::FLOAT32, "conv3x3_onednn: ", name,
             " must be float32, got ", phi::DataTypeToString(tensor->dtype()));
  }
  const auto xs = x.shape(), ws = weight.shape(), bs = bias.shape();
  PD_CHECK(xs.size() == 4, "conv3x3_onednn: x must be 4-D NCHW, got shape ", shape_text(xs));
  PD_CHECK(ws.size() == 4 && ws[2] == 3 && ws[3] == 3 && ws[1] == xs[1],
           "conv3x3_onednn: weight must be [out, ", xs[1], ", 3, 3] (OIHW, a 3x3 kernel), got ",
           shape_text(ws));
  PD_CHECK(bs.size() == 1 && bs[0] == ws[0], "conv3x3_onednn: bias must be [", ws[0], "], got ",
           shape_text(bs));
}

memory plain(const memory::desc &desc, const paddle::Tensor &tensor) {
  return memory(desc, cpu_engine(), const_cast<float *>(tensor.data<float>()));
}

paddle::Tensor contiguous(const paddle::Tensor &tensor) {
  return tensor.is_contiguous() ? tensor : tensor.contiguous();
}

}  // namespace

std::vector<paddle::Tensor> Conv3x3OnednnForward(const paddle::Tensor &x_in, const paddle::Tensor &weight_in,
                                                 const paddle::Tensor &bias_in) {
  check_inputs(x_in, weight_in, bias_in);
  const auto x = contiguous(x_in), weight = contiguous(weight_in), bias = contiguous(bias_in);
  const auto xs = x.shape();
  const auto plan_ptr = plan_for({xs[0], xs[1], xs[2], xs[3], weight.shape()[0]});
  const Plan &plan = *plan_ptr;
  auto out = paddle::empty({xs[0], weight.shape()[0], xs[2], xs[3]}, paddle::DataType::FLOAT32, paddle::CPUPlace());

  auto &stream = cpu_stream();
  const memory out_plain = plain(plan.dst, out);
  const memory dst = plan.fwd_dst.output_for(out_plain);
  plan.forward.execute(stream, {{DNNL_ARG_SRC, plan.fwd_src.to_primitive(plain(plan.src, x))},
                                {DNNL_ARG_WEIGHTS, plan.fwd_weights.to_primitive(plain(plan.weights, weight))},
                                {DNNL_ARG_BIAS, plain(plan.bias, bias)},
                                {DNNL_ARG_DST, dst}});
  plan.fwd_dst.finish(dst, out_plain);
  stream.wait();
  return {out};
}

std::vector<paddle::Tensor> Conv3x3OnednnBackward(const paddle::Tensor &x_in, const paddle::Tensor &weight_in,
                                                  const paddle::Tensor &bias_in, const paddle::Tensor &grad_out_in) {
  check_inputs(x_in, weight_in, bias_in);
  const auto x = contiguous(x_in), weight = contiguous(weight_in), grad_out = contiguous(grad_out_in);
  const auto xs = x.shape(), ws = weight.shape();
  const auto plan_ptr = plan_for({xs[0], xs[1], xs[2], xs[3], ws[0]});
  const Plan &plan = *plan_ptr;
  auto grad_x = paddle::empty(xs, paddle::DataType::FLOAT32, paddle::CPUPlace());
  auto grad_weight = paddle::empty(ws, paddle::DataType::FLOAT32, paddle::CPUPlace());
  auto grad_bias = paddle::empty({ws[0]}, paddle::DataType::FLOAT32, paddle::CPUPlace());

  auto &stream = cpu_stream();
  const memory diff_dst_plain = plain(plan.dst, grad_out);

  const memory grad_x_plain = plain(plan.src, grad_x);
  const memory diff_src = plan.bwd_data_diff_src.output_for(grad_x_plain);
  const memory diff_dst_data = plan.bwd_data_diff_dst.to_primitive(diff_dst_plain);
  plan.backward_data.execute(stream, {{DNNL_ARG_DIFF_DST, diff_dst_data},
                                      {DNNL_ARG_WEIGHTS, plan.bwd_data_weights.to_primitive(plain(plan.weights, weight))},
                                      {DNNL_ARG_DIFF_SRC, diff_src}});
  plan.bwd_data_diff_src.finish(diff_src, grad_x_plain);

  // Both backward primitives usually choose the same diff_dst layout: reorder it once.
  const bool same_diff_dst = plan.bwd_weights_diff_dst.target == plan.bwd_data_diff_dst.target;
  const memory diff_dst_weights = same_diff_dst ? diff_dst_data : plan.bwd_weights_diff_dst.to_primitive(diff_dst_plain);
  const memory grad_weight_plain = plain(plan.weights, grad_weight);
  const memory grad_bias_plain = plain(plan.bias, grad_bias);
  const memory diff_weights = plan.bwd_weights_diff_weights.output_for(grad_weight_plain);
  const memory diff_bias = plan.bwd_weights_diff_bias.output_for(grad_bias_plain);
  plan.backward_weights.execute(stream, {{DNNL_ARG_SRC, plan.bwd_weights_src.to_primitive(plain(plan.src, x))},
                                         {DNNL_ARG_DIFF_DST, diff_dst_weights},
                                         {DNNL_ARG_DIFF_WEIGHTS, diff_weights},
                                         {DNNL_ARG_DIFF_BIAS, diff_bias}});
  plan.bwd_weights_diff_weights.finish(diff_weights, grad_weight_plain);
  plan.bwd_weights_diff_bias.finish(diff_bias, grad_bias_plain);
  stream.wait();
  return {grad_x, grad_weight, grad_bias};
}

std::vector<std::vector<int64_t>> Conv3x3OnednnInferShape(const std::vector<int64_t> &x_shape,
                                                          const std::vector<int64_t> &weight_shape,
                                                          const std::vector<int64_t> &bias_shape) {
  return {{x_shape[0], weight_shape[0], x_shape[2], x_shape[3]}};
}

std::vector<paddle::DataType> Conv3x3OnednnInferDtype(const paddle::DataType &x_dtype, const paddle::DataType &weight_dtype,
                                                      const paddle::DataType &bias_dtype) {
  return {x_dtype};
}

PD_BUILD_OP(conv3x3_onednn)
    .Inputs({"X", "Weight", "Bias"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(Conv3x3OnednnForward))
    .SetInferShapeFn(PD_INFER_SHAPE(Conv3x3OnednnInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(Conv3x3OnednnInferDtype));

PD_BUILD_GRAD_OP(conv3x3_onednn)
    .Inputs({"X", "Weight", "Bias", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Weight"), paddle::Grad("Bias")})
    .SetKernelFn(PD_KERNEL(Conv3x3OnednnBackward));
