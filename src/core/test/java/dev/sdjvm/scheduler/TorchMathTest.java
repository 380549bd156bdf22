package dev.sdjvm.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** TorchMath against torch.exp / torch.log / torch.expm1 outputs (tools/reference/make_torch_math.py). */
class TorchMathTest {
    @Test
    void expAndLogAreBitExactWithTorch() throws IOException {
        float[] all;
        try (InputStream in = getClass().getResourceAsStream("/scheduler/torch_exp_log_f32.bin")) {
            byte[] b = in.readAllBytes();
            all = new float[b.length / 4];
            ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(all);
        }
        int n = all.length / 6;
        int expDiffersFromCorrectlyRounded = 0;
        for (int i = 0; i < n; i++) {
            float x = all[i];
            assertEquals(Float.floatToIntBits(all[n + i]), Float.floatToIntBits(TorchMath.exp(x)), "exp(" + x + ")");
            if ((float) Math.exp(x) != all[n + i]) {
                expDiffersFromCorrectlyRounded++;
            }
            float y = all[2 * n + i];
            assertEquals(Float.floatToIntBits(all[3 * n + i]), Float.floatToIntBits(TorchMath.log(y)), "log(" + y + ")");
            float z = all[4 * n + i];
            assertEquals(Float.floatToIntBits(all[5 * n + i]), Float.floatToIntBits(TorchMath.expm1(z)),
                    "expm1(" + z + ")");
        }
        System.out.println("torch.exp differs from the correctly rounded exp in " + expDiffersFromCorrectlyRounded
                + " of " + n + " inputs");
    }
}
