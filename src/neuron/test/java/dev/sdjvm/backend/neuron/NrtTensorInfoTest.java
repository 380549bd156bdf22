package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.sdjvm.model.DType;
import java.util.List;
import org.junit.jupiter.api.Test;

/** dtype resolution under both nrt_dtype_t numberings, and argument order from torch-neuronx's names. */
class NrtTensorInfoTest {
    @Test
    void elementTypesUnderBothNumberings() {
        // SDK 2.28+ (nrt.h): BF16 6, FP16 7, FP32 0xA, INT32 8, INT64 0xC
        assertEquals(DType.BFLOAT16, NrtTensorInfo.resolve(2, 6, true));
        assertEquals(DType.FLOAT16, NrtTensorInfo.resolve(2, 7, true));
        assertEquals(DType.FLOAT32, NrtTensorInfo.resolve(4, 0xA, true));
        assertEquals(DType.INT32, NrtTensorInfo.resolve(4, 8, true));
        assertEquals(DType.INT64, NrtTensorInfo.resolve(8, 0xC, true));
        // before 2.28 (nrt_experimental.h): FLOAT32 1, FLOAT16 2, BFLOAT16 3, INT32 8, INT64 10
        assertEquals(DType.BFLOAT16, NrtTensorInfo.resolve(2, 3, false));
        assertEquals(DType.FLOAT16, NrtTensorInfo.resolve(2, 2, false));
        assertEquals(DType.FLOAT32, NrtTensorInfo.resolve(4, 1, false));
        assertEquals(DType.INT32, NrtTensorInfo.resolve(4, 8, false));
        assertEquals(DType.INT64, NrtTensorInfo.resolve(8, 10, false));
        // a runtime whose version says one numbering but reports the other: the 2-byte float is still told apart
        assertEquals(DType.BFLOAT16, NrtTensorInfo.resolve(2, 3, true));
        assertEquals(DType.FLOAT16, NrtTensorInfo.resolve(2, 2, true));
        assertEquals(DType.BFLOAT16, NrtTensorInfo.resolve(2, 6, false));
        assertNull(NrtTensorInfo.resolve(1, 3, true), "1-byte tensors are not pipeline tensors");
    }

    @Test
    void sizeMustFitShape() {
        NrtTensorInfo t = NrtTensorInfo.of("input0", true, 2 * 4 * 8 * 8, 6, new long[] {1, 4, 8, 8}, true);
        assertEquals(DType.BFLOAT16, t.dtype());
        assertEquals(256, t.numel());
        assertThrows(IllegalStateException.class, () -> NrtTensorInfo.of("x", true, 10, 6, new long[] {3}, true));
    }

    @Test
    void inputsInArgumentOrderByTheirIndex() {
        List<NrtTensorInfo> all = List.of(
                NrtTensorInfo.of("output0", false, 4, 0xA, new long[] {1}, true),
                NrtTensorInfo.of("input2", true, 4, 0xA, new long[] {1}, true),
                NrtTensorInfo.of("input10", true, 4, 0xA, new long[] {1}, true),
                NrtTensorInfo.of("input0", true, 4, 0xA, new long[] {1}, true));
        assertEquals(List.of("input0", "input2", "input10"),
                NrtTensorInfo.ordered(all, true).stream().map(NrtTensorInfo::name).toList());
        List<NrtTensorInfo> named = List.of(
                NrtTensorInfo.of("sample", true, 4, 0xA, new long[] {1}, true),
                NrtTensorInfo.of("input0", true, 4, 0xA, new long[] {1}, true));
        assertEquals(List.of("sample", "input0"), NrtTensorInfo.ordered(named, true).stream().map(NrtTensorInfo::name).toList(),
                "other names keep the runtime's order");
    }
}
