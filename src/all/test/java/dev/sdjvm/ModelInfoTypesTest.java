package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

/** ModelInfo's own value types: what the backends report as text becomes enums and records, and back. */
class ModelInfoTypesTest {
    @Test
    void devicesParseAndPrintAsTheBackendsWriteThem() {
        assertEquals(ModelInfo.Device.CPU, ModelInfo.Device.parse("cpu"));
        assertEquals(ModelInfo.Device.Kind.CPU, ModelInfo.Device.parse("cpu").kind());
        ModelInfo.Device two = ModelInfo.Device.parse("nc0,nc1");
        assertEquals(ModelInfo.Device.Kind.NEURON, two.kind());
        assertEquals(List.of(0, 1), two.neuronCores());
        assertEquals(ModelInfo.Device.neuron(0, 1), two);
        assertEquals("nc0,nc1", two.toString());
        assertEquals("nc12", ModelInfo.Device.parse("nc12").toString());
        assertEquals("cpu", ModelInfo.Device.CPU.toString());
        for (String bad : List.of("", "gpu", "nc", "nc-1", "nc0,", "CPU", "nc0;nc1")) {
            assertThrows(IllegalArgumentException.class, () -> ModelInfo.Device.parse(bad), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> new ModelInfo.Device(ModelInfo.Device.Kind.CPU, List.of(0)));
        assertThrows(IllegalArgumentException.class, () -> ModelInfo.Device.neuron());
    }

    @Test
    void everyDTypeTheModelReaderKnowsHasAPublicTwinWithTheSameName() {
        for (dev.sdjvm.model.DType d : dev.sdjvm.model.DType.values()) {
            ModelInfo.DType pub = ModelInfo.DType.valueOf(d.name());
            assertEquals(d.manifestName(), pub.torchName());
        }
        assertEquals(dev.sdjvm.model.DType.values().length, ModelInfo.DType.values().length);
    }

    @Test
    void sourcesHaveTheirLowerCaseIds() {
        assertEquals("manifest", ModelInfo.Source.MANIFEST.id());
        assertEquals("neff", ModelInfo.Source.NEFF.id());
    }
}
