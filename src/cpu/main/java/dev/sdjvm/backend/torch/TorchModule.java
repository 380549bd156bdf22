package dev.sdjvm.backend.torch;

import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.DType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GenericDict;
import org.bytedeco.pytorch.GenericDictIterator;
import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.IValueVector;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.JitModule;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * One TorchScript artifact loaded with {@code torch::jit::load}, in eval mode.
 *
 * <p>{@link #forwardOutputs} may be called from several threads at once (libtorch's script modules are safe for concurrent
 * inference). {@link #close} waits for running calls, frees the native module and is idempotent; a call after close
 * fails with {@link IllegalStateException}. libtorch errors become {@link BackendException}s carrying libtorch's message.
 */
public final class TorchModule implements AutoCloseable {
    private final Path file;
    private final String role;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private JitModule module;

    private TorchModule(Path file, String role, JitModule module) {
        this.file = file;
        this.role = role;
        this.module = module;
    }

    /**
     * Loads a TorchScript file.
     *
     * @param role     what the module is (e.g. "unet"), used in messages
     * @param optimize make every rewrite of {@link TorchOptimizer} that applies (unmeasured: tests and tools; the
     *                 backend loads as traced and then applies the rewrites {@link RewriteTuner} chose); false runs it
     *                 as traced
     * @throws ModelLoadException when the file is missing or not a loadable TorchScript archive
     */
    public static TorchModule load(Path file, String role, boolean optimize) {
        Torch.load();
        if (!Files.isRegularFile(file)) {
            throw new ModelLoadException(file, role + " artifact not found");
        }
        JitModule m;
        try (PointerScope scope = new PointerScope()) {
            m = torch.load(file.toAbsolutePath().toString());
            m.eval();
            if (optimize) {
                var dt = TorchOptimizer.floatDType(m);
                if (dt.isPresent()) {
                    TorchOptimizer.rewrite(m, role, dt.get(), RewriteTuner.all(dt.get(), dt.get() != DType.FLOAT32
                            && !TorchOptimizer.Cpu.hasNativeBf16()).rewrites());
                }
            }
            m.retainReference();  // survive the scope: closed by close()
        } catch (RuntimeException e) {
            throw new ModelLoadException(file, "cannot load " + role + " as TorchScript: " + firstLine(e.getMessage()), e);
        }
        return new TorchModule(file, role, m);
    }

    /**
     * Rewrites the module in place ({@link TorchOptimizer#rewrite}); waits for running calls. If a rewrite fails, the
     * artifact is reloaded and runs as traced, with a warning, and null is returned.
     */
    TorchOptimizer.Report rewrite(DType dtype, java.util.Set<Rewrite> rewrites) {
        lock.writeLock().lock();
        try (PointerScope scope = new PointerScope()) {
            JitModule m = checkOpen();
            try {
                return TorchOptimizer.rewrite(m, role, dtype, rewrites);
            } catch (RuntimeException e) {
                org.slf4j.LoggerFactory.getLogger(TorchModule.class).warn("{}: graph rewrite failed, running it as traced: {}",
                        role, firstLine(e.getMessage()));
                JitModule raw = torch.load(file.toAbsolutePath().toString());
                raw.eval();
                raw.retainReference();
                m.close();
                module = raw;
                return null;
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** The loaded module, for inspection in tests (not for running it: {@link #forwardOutputs} locks). */
    JitModule module() {
        return module;
    }

    /** The artifact file. */
    public Path file() {
        return file;
    }

    /** The role given at load time ("unet", "text_encoder", ...). */
    public String role() {
        return role;
    }

    /** The dtype of the module's first floating-point parameter or buffer, if it has any (Neuron-compiled modules may have none). */
    public Optional<DType> parameterDType() {
        lock.readLock().lock();
        try (PointerScope scope = new PointerScope()) {
            JitModule m = checkOpen();
            var params = m.parameters(true);
            long n = params.size();
            var it = params.begin();
            for (long i = 0; i < n; i++, it = it.increment()) {
                DType d = toDType(it.access().scalar_type());
                if (d == DType.FLOAT32 || d == DType.BFLOAT16 || d == DType.FLOAT16) {
                    return Optional.of(d);
                }
            }
            return Optional.empty();
        } finally {
            lock.readLock().unlock();
        }
    }

    /**
     * Runs {@code forward} and returns every output tensor, flattened in order: a tensor; the elements of a tuple or
     * list (nested ones flattened); the values of a dict, named by their keys (other outputs are named
     * {@code output0, output1, ...}). The tensors belong to the caller's {@link PointerScope}.
     */
    public List<Map.Entry<String, Tensor>> forwardOutputs(Tensor... inputs) {
        lock.readLock().lock();
        try (InferenceMode guard = new InferenceMode()) {
            JitModule m = checkOpen();
            IValueVector args = new IValueVector();
            for (Tensor t : inputs) {
                args.push_back(new IValue(t));
            }
            IValue out;
            try {
                out = m.forward(args);
            } catch (RuntimeException e) {
                throw new BackendException(role + " forward failed (" + file.getFileName() + "): " + firstLine(e.getMessage()), e);
            }
            List<Map.Entry<String, Tensor>> flat = new ArrayList<>();
            flatten(out, null, flat);
            if (flat.isEmpty()) {
                throw new BackendException(role + " returned no tensor (" + out.tagKind().getString() + ")");
            }
            return flat;
        } finally {
            lock.readLock().unlock();
        }
    }

    private void flatten(IValue v, String name, List<Map.Entry<String, Tensor>> out) {
        if (v.isTensor()) {
            out.add(Map.entry(name != null ? name : "output" + out.size(), v.toTensor()));
        } else if (v.isTuple()) {
            var el = v.toTuple().elements();
            for (long i = 0; i < el.size(); i++) {
                flatten(el.get(i), null, out);
            }
        } else if (v.isTensorList()) {
            TensorVector tv = v.toTensorVector();
            for (long i = 0; i < tv.size(); i++) {
                out.add(Map.entry("output" + out.size(), tv.get(i)));
            }
        } else if (v.isList()) {
            var list = v.toList();
            for (long i = 0; i < list.size(); i++) {
                flatten(list.get(i), null, out);
            }
        } else if (v.isGenericDict()) {
            GenericDict d = v.toGenericDict();
            for (GenericDictIterator it = d.begin(); !it.equals(d.end()); it = it.increment()) {
                IValue k = it.access().key();
                flatten(it.access().value(), k.isString() ? k.toStringRef().getString() : null, out);
            }
        }
        // other values (None, scalars) carry no tensor
    }

    private JitModule checkOpen() {
        if (module == null) {
            throw new IllegalStateException(role + " module (" + file + ") is closed");
        }
        return module;
    }

    /** True until {@link #close}. */
    public boolean isOpen() {
        return module != null;
    }

    @Override
    public void close() {
        lock.writeLock().lock();
        try {
            if (module != null) {
                module.close();
                module = null;
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    /**
     * The DType of a libtorch scalar type. JavaCPP returns enum values from native code as fresh instances, so they
     * are compared by their native {@code value}, never with {@code ==} or {@code switch}.
     */
    public static DType toDType(torch.ScalarType t) {
        for (DType d : DType.values()) {
            if (toScalarType(d).value == t.value) {
                return d;
            }
        }
        return null;
    }

    /** True when both name the same libtorch scalar type (see {@link #toDType}). */
    public static boolean same(torch.ScalarType a, torch.ScalarType b) {
        return a.value == b.value;
    }

    static torch.ScalarType toScalarType(DType d) {
        switch (d) {
            case FLOAT32: return torch.ScalarType.Float;
            case BFLOAT16: return torch.ScalarType.BFloat16;
            case FLOAT16: return torch.ScalarType.Half;
            case INT64: return torch.ScalarType.Long;
            case INT32: return torch.ScalarType.Int;
            default: throw new IllegalArgumentException(String.valueOf(d));
        }
    }

    static String firstLine(String s) {
        if (s == null) {
            return "(no message)";
        }
        int nl = s.indexOf('\n');
        String line = nl < 0 ? s : s.substring(0, nl);
        // libtorch messages sometimes start with an empty line or a bare "Exception raised from" trace
        if (line.isBlank() && nl >= 0) {
            return firstLine(s.substring(nl + 1));
        }
        return line;
    }
}
