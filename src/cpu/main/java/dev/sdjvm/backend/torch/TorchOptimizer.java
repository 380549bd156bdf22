package dev.sdjvm.backend.torch;

import com.sun.jna.Function;
import com.sun.jna.NativeLibrary;
import dev.sdjvm.model.DType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.CompilationUnit;
import org.bytedeco.pytorch.Graph;
import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.IValueOptional;
import org.bytedeco.pytorch.JitModule;
import org.bytedeco.pytorch.JitNode;
import org.bytedeco.pytorch.Symbol;
import org.bytedeco.pytorch.Value;
import org.bytedeco.pytorch.ValueVector;
import org.bytedeco.pytorch.global.torch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Load-time optimization of a TorchScript artifact for CPU inference. The artifacts are usually traced with torch
 * 1.13 (AWS's tooling, {@code tools/model/make_tiny_sd.py}); libtorch 2.10 runs them as traced unless their graphs are
 * rewritten. Every rewrite keeps what the graph computes, up to floating-point rounding (see
 * {@code TorchOptimizerTest} and the parity tests):
 *
 * <ol>
 *   <li><b>Fused attention.</b> {@code softmax(q @ k^T * scale [+ mask]) @ v} — as {@code matmul}/{@code bmm}, with
 *       the scale as a multiplication, a division or diffusers' {@code baddbmm(empty, q, k^T, beta=0, alpha=scale)}
 *       — becomes {@code scaled_dot_product_attention(q, k, v, mask, scale=scale)}, whose CPU kernel (flash
 *       attention) never materializes the {@code [B, heads, N, N]} score matrix (671 MB in float32 in the first
 *       UNet blocks at 512x512).</li>
 *   <li><b>float32 compute for bfloat16 artifacts on CPUs without bfloat16 instructions</b> (no {@code avx512_bf16}
 *       and no {@code amx_bf16} in {@code /proc/cpuinfo}). There libtorch's bfloat16 matmul and convolution run
 *       scalar fallbacks: measured on an AVX2 Zen 3, 0.9 GFLOP/s for a bf16 matmul against 170 for float32. Each
 *       convolution, linear and matmul casts its bfloat16 inputs (activations and weights) to float32, runs the
 *       float32 kernel and casts its result back to its input's dtype: the rounding points of a bfloat16 kernel with
 *       float32 accumulation, within the bfloat16 tolerances. The weights stay bfloat16 in memory (each is converted
 *       when its operation runs), so memory stays at the artifact's size.</li>
 *   <li><b>Linear layers as 1x1 convolutions</b> when they run in float32: {@code linear(x, w, b)} becomes a 1x1
 *       convolution over a channels-last view of {@code x} (no copy), which oneDNN runs on libtorch's OpenMP threads;
 *       a float32 linear would go to OpenBLAS.</li>
 *   <li><b>Channels-last convolutions</b>: 4-D weights stored channels-last and convolution inputs made
 *       channels-last (a no-op once the layout has propagated), so oneDNN does not reorder every activation; the
 *       module's outputs are returned in the default layout.</li>
 *   <li><b>One BLAS thread</b> (process-wide, once): libtorch calls OpenBLAS from inside its OpenMP threads (the
 *       flash-attention blocks); OpenBLAS's own thread pool then competes with OpenMP's for the same cores.</li>
 *   <li><b>Huge pages for large buffers</b> (process-wide, before libtorch loads: {@link #beforeLibtorchLoads}).</li>
 *   <li><b>Freed memory back to the system</b> ({@link #releaseFreedMemory}, glibc's {@code malloc_trim}): called by
 *       the CPU backend after loading, before the warm-up's VAE run and before every VAE decode, whose 512x512
 *       activations set the peak RSS.</li>
 * </ol>
 *
 * <p>Tried during development on a 2-vCPU Zen 3 (UNet and VAE at 512x512, one measurement each, not part of the
 * benchmark script) and not applied: {@code torch::jit::freeze} (makes
 * the weights constants, which the executor then folds with the float32 casts into a second, float32 copy of every
 * weight: +3.5 GB for the UNet, no faster) and {@code optimize_for_inference} (no consistent gain on the VAE, +54 s
 * load and +2 GB on the UNet). oneDNN graph fusion (LLGA, {@code torch::jit::fuser::onednn}) is not exposed by the
 * JavaCPP presets (only {@code freeze}, {@code optimize_for_inference} and {@code setGraphExecutorOptimize} are).
 * See {@code docs/performance.md}.
 *
 * <p>A module without floating-point parameters (e.g. Neuron-compiled) is returned unchanged. If a rewrite fails,
 * the artifact is reloaded and run as traced, with a warning.
 */
public final class TorchOptimizer {
    private static final Logger LOG = LoggerFactory.getLogger(TorchOptimizer.class);
    private static volatile boolean blasThreadsSet;

    private TorchOptimizer() {
    }

    /** What was done to one module. */
    record Report(String role, DType dtype, Set<Rewrite> rewrites, int attention, int float32Ops, int linearAsConv,
                  int channelsLastWeights, long micros) {
        /** {@return true when every rewrite asked for changed something in the graph} */
        boolean allEffective() {
            for (Rewrite r : rewrites) {
                boolean changed = switch (r) {
                    case FUSED_ATTENTION, FUSED_ATTENTION_FLOAT32 -> attention > 0;
                    case FLOAT32_COMPUTE -> float32Ops > 0;
                    case LINEAR_AS_CONV -> linearAsConv > 0;
                    case CHANNELS_LAST -> channelsLastWeights > 0;
                };
                if (!changed) {
                    return false;
                }
            }
            return true;
        }

        @Override
        public String toString() {
            return String.format("%s (%s): rewrites %s: %d attention blocks -> scaled_dot_product_attention, %d "
                    + "conv/matmul ops in float32, %d linear -> 1x1 convolution, %d channels-last weights, in %.2f s",
                    role, dtype, Rewrite.describe(rewrites), attention, float32Ops, linearAsConv, channelsLastWeights,
                    micros / 1e6);
        }
    }

    /** The rewrites that apply to a module of this dtype (what {@link RewriteTuner} chooses among). */
    static EnumSet<Rewrite> applicable(DType dtype) {
        EnumSet<Rewrite> s = EnumSet.of(Rewrite.LINEAR_AS_CONV, Rewrite.CHANNELS_LAST, Rewrite.FUSED_ATTENTION);
        if (dtype == DType.BFLOAT16 || dtype == DType.FLOAT16) {
            s.add(Rewrite.FLOAT32_COMPUTE);
            s.add(Rewrite.FUSED_ATTENTION_FLOAT32);
        }
        return s;
    }

    /** The floating-point dtype of a module's parameters, empty when it has none (e.g. Neuron-compiled). */
    static Optional<DType> floatDType(JitModule m) {
        var params = m.parameters(true);
        long n = params.size();
        var it = params.begin();
        for (long i = 0; i < n; i++, it = it.increment()) {
            DType d = TorchModule.toDType(it.access().scalar_type());
            if (d == DType.FLOAT32 || d == DType.BFLOAT16 || d == DType.FLOAT16) {
                return Optional.of(d);
            }
        }
        return Optional.empty();
    }

    /**
     * Rewrites a loaded module (in eval mode) in place with the given rewrites (those that do not apply to its dtype
     * are ignored). {@link Rewrite#LINEAR_AS_CONV} applies only where linear layers compute in float32 (a float32
     * module, or with {@link Rewrite#FLOAT32_COMPUTE}).
     */
    static Report rewrite(JitModule m, String role, DType dtype, Set<Rewrite> wanted) {
        long t0 = System.nanoTime();
        EnumSet<Rewrite> rw = EnumSet.noneOf(Rewrite.class);
        rw.addAll(wanted);
        rw.retainAll(applicable(dtype));
        boolean float32 = rw.contains(Rewrite.FLOAT32_COMPUTE);
        if (!(dtype == DType.FLOAT32 || float32)) {
            rw.remove(Rewrite.LINEAR_AS_CONV);
        }
        if (rw.contains(Rewrite.FUSED_ATTENTION_FLOAT32)) {
            rw.remove(Rewrite.FUSED_ATTENTION);
        }
        boolean attention = rw.contains(Rewrite.FUSED_ATTENTION) || rw.contains(Rewrite.FUSED_ATTENTION_FLOAT32);
        boolean attention32 = float32 || rw.contains(Rewrite.FUSED_ATTENTION_FLOAT32);
        int att = 0;
        int ops = 0;
        int linear = 0;
        int cl = 0;
        if (!rw.isEmpty()) {
            for (Graph g : methodGraphs(m)) {
                if (attention) {
                    att += rewriteAttention(g, attention32);
                }
                if (float32) {
                    ops += computeInFloat32(g);
                }
                if (rw.contains(Rewrite.LINEAR_AS_CONV)) {
                    linear += linearAsConvolution(g);
                }
                if (rw.contains(Rewrite.CHANNELS_LAST)) {
                    channelsLastConvolutions(g);
                }
                removeDeadNodes(g);
                g.setInsertPoint(g.block());  // never leave the insert point on a destroyed node
                g.lint();
            }
            if (rw.contains(Rewrite.CHANNELS_LAST)) {
                Graph root = m.get_method("forward").graph();
                denseOutputs(root);
                root.setInsertPoint(root.block());
                root.lint();
                cl = channelsLastWeights(m);
            }
        }
        return new Report(role, dtype, rw, att, ops, linear, cl, (System.nanoTime() - t0) / 1000);
    }

    /** The method graphs of the module and its submodules, each once (modules of one type share their graphs). */
    static List<Graph> methodGraphs(JitModule m) {
        List<Graph> out = new ArrayList<>();
        Set<Long> seen = new HashSet<>();
        var list = m.modules();
        long n = list.size();
        var it = list.begin();
        for (long i = 0; i < n; i++, it = it.increment()) {
            var methods = it.access().type().methods();
            for (long j = 0; j < methods.size(); j++) {
                var f = torch.tryToGraphFunction(methods.get(j));
                if (f != null && !f.isNull()) {
                    Graph g = f.graph();
                    if (seen.add(g.address())) {
                        out.add(g);
                    }
                }
            }
        }
        return out;
    }

    // ------------------------------------------------------------------------------------------------ graph helpers

    static String kind(JitNode n) {
        return n.kind().toQualString().getString();
    }

    private static boolean same(Pointer a, Pointer b) {
        return a.address() == b.address();
    }

    /** The nodes of the graph's top-level block, in order. */
    static List<JitNode> nodes(Graph g) {
        List<JitNode> out = new ArrayList<>();
        JitNode end = g.return_node();
        for (JitNode n = g.nodes().front(); !same(n, end); n = n.next()) {
            out.add(n);
        }
        return out;
    }

    /** For each value (by native address), the nodes that use it, the graph's return node included. */
    private static Map<Long, List<JitNode>> users(Graph g) {
        Map<Long, List<JitNode>> u = new HashMap<>();
        List<JitNode> all = nodes(g);
        all.add(g.return_node());
        for (JitNode n : all) {
            var in = n.inputs();
            for (long i = 0; i < in.size(); i++) {
                u.computeIfAbsent(in.get(i).address(), k -> new ArrayList<>()).add(n);
            }
        }
        return u;
    }

    private static IValue constant(Value v) {
        IValueOptional o = torch.toIValue(v);
        return o.has_value() ? o.get() : null;
    }

    private static boolean isNone(Value v) {
        IValue c = constant(v);
        return c != null && c.isNone();
    }

    private static Double number(Value v) {
        IValue c = constant(v);
        if (c == null) {
            return null;
        }
        if (c.isDouble()) {
            return c.toDouble();
        }
        if (c.isInt()) {
            return (double) c.toInt();
        }
        return null;
    }

    private static JitNode soleUser(Map<Long, List<JitNode>> u, Value v) {
        List<JitNode> l = u.get(v.address());
        return l != null && l.size() == 1 ? l.get(0) : null;
    }

    private static boolean used(Map<Long, List<JitNode>> u, Value v, int times) {
        List<JitNode> l = u.get(v.address());
        return l != null && l.size() == times;
    }

    // ------------------------------------------------------------------------------------------------ attention

    /**
     * The replacement, in TorchScript. 3-D inputs ({@code bmm} form, heads folded into the batch) get a leading
     * dimension because libtorch's fused CPU kernel takes 4-D inputs only; with {@code float32} the attention runs in
     * float32 (see the class comment). The result has {@code v}'s dtype, as {@code probs @ v} had.
     */
    private static final String SDPA_SOURCE = String.join("\n",
            "def sdpa(q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor], scale: float, float32: bool) -> Tensor:",
            "    out_dtype = v.dtype",
            "    if float32:",
            "        q = q.float()",
            "    k = k.to(q.dtype)",
            "    v = v.to(q.dtype)",
            "    if mask is not None:",
            "        mask = mask.to(q.dtype)",
            "    if q.dim() == 3:",
            "        m4 = mask",
            "        if mask is not None:",
            "            if mask.dim() == 3:",
            "                m4 = mask.unsqueeze(0)",
            "        o = torch.scaled_dot_product_attention(q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0),"
                    + " attn_mask=m4, scale=scale).squeeze(0)",
            "    else:",
            "        o = torch.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)",
            "    return o.to(out_dtype)",
            "");

    private static final Snippet SDPA = new Snippet(SDPA_SOURCE);

    /**
     * Replaces {@code matmul(softmax([mask +] scale * matmul(q, kT), dim=-1), v)} and its {@code bmm},
     * {@code baddbmm} and division forms (optionally with a dtype cast after the softmax) by
     * {@code scaled_dot_product_attention}. Every intermediate must have no other use. Returns the number of
     * rewrites.
     */
    static int rewriteAttention(Graph g, boolean float32) {
        int count = 0;
        Map<Long, List<JitNode>> u = users(g);
        List<JitNode> softmax = new ArrayList<>();
        for (JitNode n : nodes(g)) {
            if (kind(n).equals("aten::softmax")) {
                softmax.add(n);  // a rewrite destroys only its own softmax among these
            }
        }
        for (JitNode s : softmax) {
            Match a = match(s, u);
            if (a == null) {
                continue;
            }
            g.setInsertPoint(a.output);
            Value k = g.insertNode(g.create(Symbol.aten("transpose"), new ValueVector(a.kT,
                    torch.insertConstant(g, new IValue(-2L)), torch.insertConstant(g, new IValue(-1L))), 1)).output();
            Value q = a.q;
            if (a.scaleTensor != null) {  // a 0-dim tensor scale (e.g. c ** -0.5 from a traced shape): scale q
                q = g.insertNode(g.create(Symbol.aten("mul"), new ValueVector(q, a.scaleTensor), 1)).output();
            }
            Value mask = a.mask != null ? a.mask : torch.insertConstant(g, new IValue());
            ValueVector outs = torch.insertGraph(g, SDPA.graph(), new ValueVector(q, k, a.v, mask,
                    torch.insertConstant(g, new IValue(a.scale)), torch.insertConstant(g, new IValue(float32))));
            a.output.output().replaceAllUsesWith(outs.get(0));
            for (JitNode d : a.replaced) {
                d.destroy();
            }
            count++;
            u = users(g);
        }
        return count;
    }

    /** An attention pattern found around a softmax node; {@code replaced} in use-before-definition order. */
    private record Match(Value q, Value kT, Value v, Value mask, double scale, Value scaleTensor, JitNode output,
                         List<JitNode> replaced) {
    }

    private static Match match(JitNode s, Map<Long, List<JitNode>> u) {
        Double dim = number(s.input(1));
        if (dim == null || dim != -1 || !isNone(s.input(2))) {
            return null;
        }
        List<JitNode> replaced = new ArrayList<>();
        // softmax -> [to(dtype)] -> matmul/bmm(probs, v)
        JitNode consumer = soleUser(u, s.output());
        JitNode cast = null;
        if (consumer != null && kind(consumer).equals("aten::to")) {
            cast = consumer;
            consumer = soleUser(u, cast.output());
        }
        Value probs = cast != null ? cast.output() : s.output();
        if (consumer == null || !isMatmul(kind(consumer)) || !same(consumer.input(0), probs)) {
            return null;
        }
        replaced.add(consumer);
        if (cast != null) {
            replaced.add(cast);
        }
        replaced.add(s);
        // scores: [add(., mask)] <- [mul(., scale) | div(., scale)] <- matmul/bmm(q, kT) | baddbmm(_, q, kT, 0, scale)
        Value x = s.input(0);
        JitNode p = x.node();
        Value mask = null;
        double scale = 1.0;
        Value scaleTensor = null;
        if (!used(u, x, 1)) {
            return null;
        }
        if (kind(p).equals("aten::add") && p.inputs().size() == 3) {
            Double alpha = number(p.input(2));
            if (alpha == null || alpha != 1.0) {
                return null;
            }
            mask = p.input(1);
            replaced.add(p);
            x = p.input(0);
            p = x.node();
            if (!used(u, x, 1)) {
                return null;
            }
        }
        if ((kind(p).equals("aten::mul") || kind(p).equals("aten::div")) && p.inputs().size() == 2) {
            boolean div = kind(p).equals("aten::div");
            Double c = number(p.input(1));
            if (c != null && c != 0) {
                scale = div ? 1.0 / c : c;
            } else if (!div && mask == null) {
                scaleTensor = p.input(1);
            } else {
                return null;
            }
            replaced.add(p);
            x = p.input(0);
            p = x.node();
            if (!used(u, x, 1)) {
                return null;
            }
        }
        Value q;
        Value kT;
        if (kind(p).equals("aten::baddbmm") && p.inputs().size() == 5) {
            Double beta = number(p.input(3));
            Double alpha = number(p.input(4));
            if (beta == null || beta != 0.0 || alpha == null) {
                return null;
            }
            scale *= alpha;
            q = p.input(1);
            kT = p.input(2);
        } else if (isMatmul(kind(p))) {
            q = p.input(0);
            kT = p.input(1);
        } else {
            return null;
        }
        replaced.add(p);
        return new Match(q, kT, consumer.input(1), mask, scale, scaleTensor, consumer, replaced);
    }

    private static boolean isMatmul(String kind) {
        return kind.equals("aten::matmul") || kind.equals("aten::bmm");
    }

    // ------------------------------------------------------------------------------------------------ linear as 1x1 conv

    /**
     * {@code linear(x, w, b)} as a 1x1 convolution over a channels-last view of {@code x} (no copy): oneDNN's
     * convolution runs on libtorch's OpenMP threads, where a float32 linear goes to OpenBLAS.
     */
    private static final String LINEAR_SOURCE = String.join("\n",
            "def linear(x: Tensor, w: Tensor, b: Optional[Tensor]) -> Tensor:",
            "    c = x.size(-1)",
            "    o = w.size(0)",
            "    shape = x.size()[:-1] + [o]",
            "    x4 = x.reshape([1, -1, 1, c]).permute([0, 3, 1, 2])",
            "    y = torch.conv2d(x4, w.view([o, c, 1, 1]), b)",
            "    return y.permute([0, 2, 3, 1]).reshape(shape)",
            "");

    private static final Snippet LINEAR = new Snippet(LINEAR_SOURCE);

    /** Replaces every {@code aten::linear} by {@link #LINEAR_SOURCE}; returns the number replaced. */
    static int linearAsConvolution(Graph g) {
        int count = 0;
        for (JitNode n : nodes(g)) {
            if (!kind(n).equals("aten::linear") || n.inputs().size() != 3) {
                continue;
            }
            g.setInsertPoint(n);
            ValueVector outs = torch.insertGraph(g, LINEAR.graph(), new ValueVector(n.input(0), n.input(1), n.input(2)));
            n.output().replaceAllUsesWith(outs.get(0));
            n.destroy();
            count++;
        }
        return count;
    }

    // ------------------------------------------------------------------------------------------------ channels last

    private static final String CHANNELS_LAST_SOURCE = String.join("\n",
            "def channels_last(x: Tensor) -> Tensor:",
            "    if x.dim() == 4:",
            "        return x.contiguous(memory_format=2)",  // torch.channels_last (the resolver knows no torch.* names)
            "    return x",
            "");

    private static final Snippet CHANNELS_LAST = new Snippet(CHANNELS_LAST_SOURCE);

    /**
     * Gives every 2-D convolution a channels-last input (a no-op when it already is): oneDNN then reads and writes
     * NHWC directly instead of reordering NCHW activations at every convolution, and the layout propagates through
     * the element-wise ops and normalizations in between.
     */
    static int channelsLastConvolutions(Graph g) {
        int count = 0;
        for (JitNode n : nodes(g)) {
            String k = kind(n);
            if (!k.equals("aten::_convolution") && !k.equals("aten::conv2d")) {
                continue;
            }
            g.setInsertPoint(n);
            n.replaceInput(0, torch.insertGraph(g, CHANNELS_LAST.graph(), new ValueVector(n.input(0))).get(0));
            count++;
        }
        return count;
    }

    /** Stores the 4-D floating-point parameters (convolution weights) channels-last; returns how many. */
    static int channelsLastWeights(JitModule m) {
        int count = 0;
        var params = m.parameters(true);
        long n = params.size();
        var it = params.begin();
        for (long i = 0; i < n; i++, it = it.increment()) {
            org.bytedeco.pytorch.Tensor t = it.access();
            DType d = TorchModule.toDType(t.scalar_type());
            if (t.dim() == 4 && (d == DType.FLOAT32 || d == DType.BFLOAT16 || d == DType.FLOAT16)
                    && !t.is_contiguous(torch.MemoryFormat.ChannelsLast)) {
                t.__dispatch_set_data(t.contiguous(torch.MemoryFormat.ChannelsLast));
                count++;
            }
        }
        return count;
    }

    /**
     * Makes the tensors the graph returns (directly or in a tuple, list or dict) contiguous in the default layout,
     * so that callers see the layout the traced graph returned.
     */
    static void denseOutputs(Graph g) {
        JitNode ret = g.return_node();
        for (long i = 0; i < ret.inputs().size(); i++) {
            Value v = ret.input(i);
            JitNode p = v.node();
            String k = kind(p);
            if (k.equals("prim::TupleConstruct") || k.equals("prim::ListConstruct") || k.equals("prim::DictConstruct")) {
                for (long j = 0; j < p.inputs().size(); j++) {
                    Value e = p.input(j);
                    if (isTensor(e)) {
                        g.setInsertPoint(p);
                        p.replaceInput(j, g.insertNode(g.create(Symbol.aten("contiguous"),
                                new ValueVector(e, torch.insertConstant(g, new IValue(0L))), 1)).output());
                    }
                }
            } else if (isTensor(v)) {
                g.setInsertPoint(ret);
                ret.replaceInput(i, g.insertNode(g.create(Symbol.aten("contiguous"),
                        new ValueVector(v, torch.insertConstant(g, new IValue(0L))), 1)).output());
            }
        }
    }

    private static boolean isTensor(Value v) {
        return v.type().get().kind().value == torch.TypeKind.TensorType.value;
    }

    // ------------------------------------------------------------------------------------------------ float32 compute

    /** The compute-heavy ops and their tensor inputs (optional ones may be None). */
    private static final Map<String, int[]> HEAVY = Map.of(
            "aten::_convolution", new int[] {0, 1, 2},
            "aten::conv2d", new int[] {0, 1, 2},
            "aten::linear", new int[] {0, 1, 2},
            "aten::matmul", new int[] {0, 1},
            "aten::bmm", new int[] {0, 1},
            "aten::mm", new int[] {0, 1},
            "aten::baddbmm", new int[] {0, 1, 2},
            "aten::addmm", new int[] {0, 1, 2});

    /**
     * Wraps every compute-heavy node: its tensor inputs cast to float32 ({@code aten::to}, a no-op for float32
     * inputs), its result cast back to its first input's dtype ({@code aten::type_as}). Returns the number of nodes.
     */
    static int computeInFloat32(Graph g) {
        List<JitNode> heavy = new ArrayList<>();
        for (JitNode n : nodes(g)) {
            if (HEAVY.containsKey(kind(n))) {
                heavy.add(n);
            }
        }
        if (heavy.isEmpty()) {
            return 0;
        }
        g.setInsertPoint(heavy.get(0));
        Value f32 = torch.insertConstant(g, new IValue(6L));  // ScalarType Float
        Value no = torch.insertConstant(g, new IValue(false));
        Value none = torch.insertConstant(g, new IValue());
        for (JitNode n : heavy) {
            Value x0 = n.input(0);
            g.setInsertPoint(n);
            for (int i : HEAVY.get(kind(n))) {
                Value in = n.input(i);
                if (!isNone(in)) {
                    n.replaceInput(i, g.insertNode(g.create(Symbol.aten("to"), new ValueVector(in, f32, no, no, none), 1))
                            .output());
                }
            }
            Value out = n.output();
            JitNode back = g.create(Symbol.aten("type_as"), new ValueVector(out, x0), 1);
            back.insertAfter(n);
            out.replaceAllUsesWith(back.output());
            back.replaceInput(0, out);
        }
        return heavy.size();
    }

    /** Removes nodes whose outputs are unused and that have no side effects (left over by the rewrites). */
    static void removeDeadNodes(Graph g) {
        List<JitNode> all = nodes(g);
        for (int i = all.size() - 1; i >= 0; i--) {
            JitNode n = all.get(i);
            String k = kind(n);
            if (!n.hasUses() && !n.hasSideEffects() && !k.equals("prim::If") && !k.equals("prim::Loop")) {
                n.destroy();
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ process settings

    /**
     * Before libtorch loads (called by {@link Torch#load}): sets the environment variables that libtorch's allocator and
     * its OpenMP runtime read once, when they start, unless the environment already has them. {@code hugePages}:
     * {@code THP_MEM_ALLOC_ENABLE=1} (c10 asks for transparent huge pages on buffers of 2 MB and more);
     * {@code passiveWait}: {@code OMP_WAIT_POLICY=PASSIVE} (waiting OpenMP threads sleep instead of spinning). Linux
     * only; process-wide.
     */
    static void beforeLibtorchLoads(boolean hugePages, boolean passiveWait) {
        if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) {
            return;
        }
        if (hugePages) {
            setenvIfUnset("THP_MEM_ALLOC_ENABLE", "1");
        }
        if (passiveWait) {
            setenvIfUnset("OMP_WAIT_POLICY", "PASSIVE");
        }
    }

    private static void setenvIfUnset(String name, String value) {
        if (System.getenv(name) != null) {
            LOG.debug("{} is set in the environment ({}): left as is", name, System.getenv(name));
            return;
        }
        try {
            int rc = Function.getFunction("c", "setenv").invokeInt(new Object[] {name, value, 0});
            LOG.debug("{}={} ({})", name, value, rc == 0 ? "set" : "setenv failed");
        } catch (RuntimeException | LinkageError e) {
            LOG.debug("cannot set {}: {}", name, e.toString());
        }
    }

    /**
     * Gives the C heap's free memory back to the system ({@code malloc_trim(0)}, glibc only; a no-op elsewhere).
     * Called once a pipeline is loaded: the channels-last weight copies and the load's read buffers leave freed
     * blocks in glibc's arenas that RSS keeps counting (measured: 175 MiB of 3071 MiB after loading SD 2.1-base).
     */
    public static void releaseFreedMemory() {
        Function trim = MallocTrim.FUNCTION;
        if (trim != null) {
            trim.invokeInt(new Object[] {0});
        }
    }

    /** glibc's {@code malloc_trim}, looked up once; null off Linux or without glibc. */
    private static final class MallocTrim {
        static final Function FUNCTION = lookup();

        private static Function lookup() {
            if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) {
                return null;
            }
            try {
                return Function.getFunction("c", "malloc_trim");
            } catch (RuntimeException | LinkageError e) {
                LOG.debug("malloc_trim unavailable (not glibc?): {}", e.toString());
                return null;
            }
        }
    }

    /** Sets OpenBLAS (the BLAS libtorch was built with) to one thread, once per process. */
    static boolean singleThreadedBlas() {
        if (blasThreadsSet) {
            return true;
        }
        synchronized (TorchOptimizer.class) {
            if (!blasThreadsSet) {
                try {
                    String lib = Loader.load(org.bytedeco.openblas.global.openblas_nolapack.class);
                    Function f = NativeLibrary.getInstance(lib).getFunction("openblas_set_num_threads");
                    f.invoke(new Object[] {1});
                    blasThreadsSet = true;
                } catch (RuntimeException | LinkageError e) {
                    LOG.warn("cannot set OpenBLAS to one thread: {}", e.getMessage());
                }
            }
            return blasThreadsSet;
        }
    }

    /** A TorchScript function, compiled once on first use; its graph is inlined by the rewrites. */
    private static final class Snippet {
        private final String source;
        private Graph graph;

        Snippet(String source) {
            this.source = source;
        }

        synchronized Graph graph() {
            if (graph == null) {
                CompilationUnit cu = torch.compile(source);
                cu.retainReference();  // owns the graph; kept for the life of the process
                Graph g = torch.toGraphFunction(cu.get_functions().get(0)).graph();
                g.retainReference();
                graph = g;
            }
            return graph;
        }
    }

    /** CPU features, from {@code /proc/cpuinfo} (Linux). */
    static final class Cpu {
        private static volatile Boolean nativeBf16;

        private Cpu() {
        }

        /**
         * System property overriding the detection: {@code -Dsdjvm.cpu.bf16=false} computes bfloat16 artifacts in
         * float32 on any CPU; {@code true} keeps them in bfloat16 (slow where libtorch falls back to scalar code).
         */
        static final String BF16_PROPERTY = "sdjvm.cpu.bf16";

        /**
         * True when the CPU has bfloat16 dot-product instructions ({@code avx512_bf16} or {@code amx_bf16}), unless
         * {@value #BF16_PROPERTY} says otherwise.
         */
        static boolean hasNativeBf16() {
            Boolean b = nativeBf16;
            if (b == null) {
                String forced = System.getProperty(BF16_PROPERTY);
                b = forced != null ? Boolean.parseBoolean(forced)
                        : flags().stream().anyMatch(f -> f.equals("avx512_bf16") || f.equals("amx_bf16"));
                nativeBf16 = b;
            }
            return b;
        }

        /**
         * The {@value #BF16_PROPERTY} system property: true = keep bfloat16 compute, false = compute in float32, null
         * when unset (decided by measurement, or by the CPU flags when measuring is off).
         */
        static Boolean bf16Override() {
            String forced = System.getProperty(BF16_PROPERTY);
            return forced == null || forced.isBlank() ? null : Boolean.parseBoolean(forced.trim());
        }

        /** {@code family F model M} from /proc/cpuinfo, or "unknown family". */
        static String family() {
            String fam = null;
            String model = null;
            try {
                for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                    if (fam == null && line.startsWith("cpu family")) {
                        fam = line.substring(line.indexOf(':') + 1).trim();
                    } else if (model == null && line.startsWith("model") && !line.startsWith("model name")) {
                        model = line.substring(line.indexOf(':') + 1).trim();
                    }
                    if (fam != null && model != null) {
                        break;
                    }
                }
            } catch (IOException | RuntimeException e) {
                LOG.debug("cannot read /proc/cpuinfo: {}", e.toString());
            }
            return fam == null ? "unknown family" : "family " + fam + " model " + model;
        }

        static Set<String> flags() {
            try {
                for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                    if (line.startsWith("flags")) {
                        return new HashSet<>(java.util.Arrays.asList(line.substring(line.indexOf(':') + 1).trim().split("\\s+")));
                    }
                }
            } catch (IOException | RuntimeException e) {
                LOG.debug("cannot read /proc/cpuinfo: {}", e.toString());
            }
            return Set.of();
        }
    }
}
