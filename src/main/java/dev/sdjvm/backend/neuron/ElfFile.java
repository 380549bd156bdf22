package dev.sdjvm.backend.neuron;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * A minimal, read-only ELF reader (pure Java, no native code) for what the Neuron backend must know about a shared
 * library <em>before</em> {@code dlopen}-ing it: the machine, the dynamic section ({@code DT_NEEDED},
 * {@code DT_SONAME}, {@code DT_RUNPATH}/{@code DT_RPATH}), the version-needed section ({@code .gnu.version_r}:
 * which library versions such as {@code GLIBCXX_3.4.30} are required), and the dynamic symbol table.
 *
 * <p>Section and segment layouts follow the System V ABI / ELF specification ({@code elf.h}); both ELFCLASS32 and
 * ELFCLASS64, both byte orders. The file is memory-mapped, so a 300 MB {@code libtorch_cpu.so} only pages in the
 * sections that are read. Every structural problem (not ELF, truncated, offsets outside the file) is an
 * {@link IOException} whose message names the file and the problem.
 */
public final class ElfFile {
    /** {@code e_machine} values we name in messages. */
    public static final int EM_386 = 3;
    public static final int EM_X86_64 = 62;
    public static final int EM_AARCH64 = 183;

    /** {@code e_type}: shared object. */
    public static final int ET_DYN = 3;

    private static final int SHT_DYNSYM = 11;
    private static final int SHT_DYNAMIC = 6;
    private static final int SHT_GNU_VERDEF = 0x6ffffffd;
    private static final int SHT_GNU_VERNEED = 0x6ffffffe;

    private static final long DT_NULL = 0;
    private static final long DT_NEEDED = 1;
    private static final long DT_RPATH = 15;
    private static final long DT_SONAME = 14;
    private static final long DT_RUNPATH = 29;

    private static final int SHN_UNDEF = 0;

    /** A symbol of {@code .dynsym}. */
    public record Symbol(String name, boolean defined, int binding, int type) {
        /** STB_WEAK. */
        public boolean weak() {
            return binding == 2;
        }
    }

    /** One entry of {@code .gnu.version_r}: a needed file and the version names required from it. */
    public record VersionNeed(String file, List<String> versions) {
        public VersionNeed {
            versions = List.copyOf(versions);
        }
    }

    private final Path path;
    private final boolean is64;
    private final ByteBuffer buf;
    private final int type;
    private final int machine;
    private final List<Section> sections;

    private record Section(int index, int type, long offset, long size, int link, long entSize) {}

    private ElfFile(Path path, ByteBuffer buf) throws IOException {
        this.path = path;
        this.buf = buf;
        if (buf.limit() < 16) {
            throw problem("too short to be an ELF file (" + buf.limit() + " bytes)");
        }
        if (buf.get(0) != 0x7f || buf.get(1) != 'E' || buf.get(2) != 'L' || buf.get(3) != 'F') {
            throw problem("not an ELF file (bad magic; a linker script or text stub?)");
        }
        int cls = buf.get(4);
        if (cls != 1 && cls != 2) {
            throw problem("unknown ELF class " + cls);
        }
        is64 = cls == 2;
        int data = buf.get(5);
        if (data != 1 && data != 2) {
            throw problem("unknown ELF data encoding " + data);
        }
        buf.order(data == 1 ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN);
        int headerSize = is64 ? 64 : 52;
        need(0, headerSize, "ELF header");
        type = u16(16);
        machine = u16(18);
        long shoff = is64 ? u64(0x28) : u32(0x20);
        int shentsize = u16(is64 ? 0x3A : 0x2E);
        int shnum = u16(is64 ? 0x3C : 0x30);
        List<Section> list = new ArrayList<>();
        if (shoff != 0 && shnum > 0) {
            if (shentsize < (is64 ? 64 : 40)) {
                throw problem("section header entry size " + shentsize + " is too small");
            }
            need(shoff, (long) shentsize * shnum, "section header table");
            for (int i = 0; i < shnum; i++) {
                long base = shoff + (long) i * shentsize;
                int stype = (int) u32(base + 4);
                long off = is64 ? u64(base + 0x18) : u32(base + 0x10);
                long size = is64 ? u64(base + 0x20) : u32(base + 0x14);
                int link = (int) u32(base + (is64 ? 0x28 : 0x18));
                long entsize = is64 ? u64(base + 0x38) : u32(base + 0x24);
                list.add(new Section(i, stype, off, size, link, entsize));
            }
        }
        sections = Collections.unmodifiableList(list);
    }

    /**
     * Maps and validates {@code file}'s ELF header and section headers.
     *
     * @throws IOException when the file cannot be read or is not a well-formed ELF file (the message says why)
     */
    public static ElfFile read(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size > Integer.MAX_VALUE) {
                // mapping is limited to 2 GiB per buffer; no shared library we inspect is that large
                throw new IOException(file + ": larger than 2 GiB, not inspected");
            }
            ByteBuffer b = ch.map(FileChannel.MapMode.READ_ONLY, 0, size);
            return new ElfFile(file, b);
        }
    }

    /** The inspected file. */
    public Path path() {
        return path;
    }

    /** True for ELFCLASS64. */
    public boolean is64Bit() {
        return is64;
    }

    /** {@code e_type} (3 = shared object). */
    public int type() {
        return type;
    }

    /** {@code e_machine} (62 = x86-64, 183 = AArch64). */
    public int machine() {
        return machine;
    }

    /** A readable name for {@link #machine()}. */
    public String machineName() {
        return machineName(machine);
    }

    /** A readable name for an {@code e_machine} value. */
    public static String machineName(int machine) {
        return switch (machine) {
            case EM_X86_64 -> "x86-64";
            case EM_AARCH64 -> "aarch64";
            case EM_386 -> "i386";
            default -> "e_machine " + machine;
        };
    }

    /** The {@code e_machine} of the running JVM ({@code os.arch}), or -1 when unknown. */
    public static int jvmMachine() {
        String arch = System.getProperty("os.arch", "");
        return switch (arch) {
            case "amd64", "x86_64" -> EM_X86_64;
            case "aarch64", "arm64" -> EM_AARCH64;
            case "x86", "i386", "i686" -> EM_386;
            default -> -1;
        };
    }

    /** {@code DT_NEEDED} entries in file order (empty for a static or section-less file). */
    public List<String> needed() throws IOException {
        return dynamicStrings(DT_NEEDED);
    }

    /** {@code DT_SONAME}, or null. */
    public String soname() throws IOException {
        List<String> l = dynamicStrings(DT_SONAME);
        return l.isEmpty() ? null : l.get(0);
    }

    /** {@code DT_RUNPATH} entries, else {@code DT_RPATH} entries (split at ':'), unexpanded ({@code $ORIGIN} kept). */
    public List<String> runPath() throws IOException {
        List<String> l = dynamicStrings(DT_RUNPATH);
        if (l.isEmpty()) {
            l = dynamicStrings(DT_RPATH);
        }
        List<String> out = new ArrayList<>();
        for (String s : l) {
            for (String part : s.split(":")) {
                if (!part.isEmpty()) {
                    out.add(part);
                }
            }
        }
        return out;
    }

    /** The {@code .gnu.version_r} entries: which files and which symbol versions this object requires. */
    public List<VersionNeed> versionNeeds() throws IOException {
        Section s = first(SHT_GNU_VERNEED);
        if (s == null) {
            return List.of();
        }
        Section strtab = linked(s);
        Map<String, List<String>> out = new LinkedHashMap<>();
        long pos = s.offset();
        long end = s.offset() + s.size();
        need(s.offset(), s.size(), ".gnu.version_r");
        int guard = 0;
        while (pos + 16 <= end && guard++ < 10_000) {
            int cnt = u16(pos + 2);
            String file = string(strtab, u32(pos + 4));
            long aux = pos + u32(pos + 8);
            List<String> versions = out.computeIfAbsent(file, k -> new ArrayList<>());
            for (int i = 0; i < cnt; i++) {
                need(aux, 16, "Vernaux entry");
                versions.add(string(strtab, u32(aux + 8)));
                long next = u32(aux + 12);
                if (next == 0) {
                    break;
                }
                aux += next;
            }
            long next = u32(pos + 12);
            if (next == 0) {
                break;
            }
            pos += next;
        }
        List<VersionNeed> list = new ArrayList<>();
        out.forEach((f, v) -> list.add(new VersionNeed(f, v)));
        return list;
    }

    /** The version names this object defines ({@code .gnu.version_d}), its own soname entry included. */
    public List<String> versionDefinitions() throws IOException {
        Section s = first(SHT_GNU_VERDEF);
        if (s == null) {
            return List.of();
        }
        Section strtab = linked(s);
        need(s.offset(), s.size(), ".gnu.version_d");
        List<String> out = new ArrayList<>();
        long pos = s.offset();
        long end = s.offset() + s.size();
        int guard = 0;
        while (pos + 20 <= end && guard++ < 10_000) {
            long aux = pos + u32(pos + 12);
            need(aux, 8, "Verdaux entry");
            out.add(string(strtab, u32(aux)));
            long next = u32(pos + 16);
            if (next == 0) {
                break;
            }
            pos += next;
        }
        return out;
    }

    /** All {@code .dynsym} symbols (index 0, the null symbol, excluded). */
    public List<Symbol> dynamicSymbols() throws IOException {
        List<Symbol> out = new ArrayList<>();
        forEachDynamicSymbol(sym -> {
            out.add(sym);
            return true;
        });
        return out;
    }

    /**
     * Streams {@code .dynsym} without building a list (a libtorch_cpu.so has ~10^5 symbols). The visitor returns
     * false to stop early.
     */
    public void forEachDynamicSymbol(Predicate<Symbol> visitor) throws IOException {
        Section s = first(SHT_DYNSYM);
        if (s == null) {
            return;
        }
        Section strtab = linked(s);
        int ent = is64 ? 24 : 16;
        need(s.offset(), s.size(), ".dynsym");
        long count = s.size() / ent;
        for (long i = 1; i < count; i++) {
            long base = s.offset() + i * ent;
            long nameOff = u32(base);
            int info;
            int shndx;
            if (is64) {
                info = buf.get((int) (base + 4)) & 0xff;
                shndx = u16(base + 6);
            } else {
                info = buf.get((int) (base + 12)) & 0xff;
                shndx = u16(base + 14);
            }
            Symbol sym = new Symbol(string(strtab, nameOff), shndx != SHN_UNDEF, info >>> 4, info & 0xf);
            if (!visitor.test(sym)) {
                return;
            }
        }
    }

    private List<String> dynamicStrings(long tag) throws IOException {
        Section dyn = first(SHT_DYNAMIC);
        if (dyn == null) {
            return List.of();
        }
        Section strtab = linked(dyn);
        int ent = is64 ? 16 : 8;
        need(dyn.offset(), dyn.size(), ".dynamic");
        List<String> out = new ArrayList<>();
        for (long p = dyn.offset(); p + ent <= dyn.offset() + dyn.size(); p += ent) {
            long t = is64 ? u64(p) : u32(p);
            if (t == DT_NULL) {
                break;
            }
            if (t == tag) {
                long v = is64 ? u64(p + 8) : u32(p + 4);
                out.add(string(strtab, v));
            }
        }
        return out;
    }

    private Section first(int stype) {
        for (Section s : sections) {
            if (s.type() == stype) {
                return s;
            }
        }
        return null;
    }

    private Section linked(Section s) throws IOException {
        if (s.link() <= 0 || s.link() >= sections.size()) {
            throw problem("section " + s.index() + " links to missing string table " + s.link());
        }
        Section str = sections.get(s.link());
        need(str.offset(), str.size(), "string table");
        return str;
    }

    private String string(Section strtab, long off) throws IOException {
        if (off < 0 || off >= strtab.size()) {
            throw problem("string offset " + off + " outside its string table (" + strtab.size() + " bytes)");
        }
        int start = (int) (strtab.offset() + off);
        int endLimit = (int) (strtab.offset() + strtab.size());
        int e = start;
        while (e < endLimit && buf.get(e) != 0) {
            e++;
        }
        byte[] b = new byte[e - start];
        buf.get(start, b);
        return new String(b, StandardCharsets.UTF_8);
    }

    private void need(long offset, long length, String what) throws IOException {
        if (offset < 0 || length < 0 || offset + length > buf.limit()) {
            throw problem(what + " at offset " + offset + " (+" + length + " bytes) lies outside the file ("
                    + buf.limit() + " bytes): truncated or corrupt");
        }
    }

    private int u16(long off) throws IOException {
        need(off, 2, "field");
        return buf.getShort((int) off) & 0xffff;
    }

    private long u32(long off) throws IOException {
        need(off, 4, "field");
        return buf.getInt((int) off) & 0xffffffffL;
    }

    private long u64(long off) throws IOException {
        need(off, 8, "field");
        long v = buf.getLong((int) off);
        if (v < 0) {
            throw problem("64-bit field at offset " + off + " is out of range");
        }
        return v;
    }

    private IOException problem(String what) {
        return new IOException(path + ": " + what);
    }
}
