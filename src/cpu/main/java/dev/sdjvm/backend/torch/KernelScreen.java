package dev.sdjvm.backend.torch;

import dev.sdjvm.model.DType;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.CompilationUnit;
import org.bytedeco.pytorch.Function;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.IValueVector;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

/**
 * The kernel screen of {@link RewriteTuner}: a 3x3 convolution (64 channels at 32x32) and a matmul (256x512 by
 * 512x512), in bfloat16 (or float16) as the traced graph runs them, and in float32 compute as
 * {@link Rewrite#FLOAT32_COMPUTE} runs them (inputs and weights cast up, result cast back). Small enough to take well
 * under a second where bfloat16 runs scalar fallbacks (about 0.2 GFLOP at 0.3-0.9 GFLOP/s), repeated for at least
 * 0.2 s where it is fast.
 */
final class KernelScreen {
    private static final String SOURCE = String.join("\n",
            "def low(x: Tensor, w: Tensor, a: Tensor, b: Tensor) -> Tensor:",
            "    y = torch.conv2d(x, w, None, [1, 1], [1, 1])",
            "    z = torch.matmul(a, b)",
            "    return y.sum() + z.sum()",
            "def float32(x: Tensor, w: Tensor, a: Tensor, b: Tensor) -> Tensor:",
            "    y = torch.conv2d(x.float(), w.float(), None, [1, 1], [1, 1]).to(x.dtype)",
            "    z = torch.matmul(a.float(), b.float()).to(a.dtype)",
            "    return y.sum() + z.sum()",
            "");

    private KernelScreen() {
    }

    /** {@return seconds per call: {low precision, float32 compute}} */
    static double[] time(DType dtype) {
        try (PointerScope s = new PointerScope(); InferenceMode g = new InferenceMode()) {
            CompilationUnit cu = torch.compile(SOURCE);
            torch.ScalarType st = TorchModule.toScalarType(dtype);
            GeneratorOptional gen = new GeneratorOptional(torch.createCPUGenerator(7));
            TensorOptions f32 = new TensorOptions(torch.ScalarType.Float);
            IValueVector args = new IValueVector();
            for (long[] shape : new long[][] {{1, 64, 32, 32}, {64, 64, 3, 3}, {256, 512}, {512, 512}}) {
                args.push_back(new IValue(torch.randn(shape, gen, f32).to(st)));
            }
            Function low = cu.get_functions().get(0);   // in definition order: low, float32
            Function f32c = cu.get_functions().get(1);
            // interleaved, so that a change in machine load hits both alike
            double tLow = Double.POSITIVE_INFINITY;
            double tF32 = Double.POSITIVE_INFINITY;
            call(low, args);
            call(f32c, args);
            double spent = 0;
            for (int i = 0; i < 50 && (i < 3 || spent < 0.4); i++) {
                double a = call(low, args);
                double b = call(f32c, args);
                tLow = Math.min(tLow, a);
                tF32 = Math.min(tF32, b);
                spent += a + b;
                if (i == 0 && (a > 20 * b || b > 20 * a)) {
                    break;  // one clear result is enough (and a slow side would take long)
                }
            }
            return new double[] {tLow, tF32};
        }
    }

    private static double call(Function f, IValueVector args) {
        try (PointerScope s = new PointerScope()) {
            long t0 = System.nanoTime();
            f.apply(args);
            return (System.nanoTime() - t0) / 1e9;
        }
    }
}
