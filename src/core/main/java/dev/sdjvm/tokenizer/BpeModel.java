package dev.sdjvm.tokenizer;

import java.util.Arrays;

/**
 * Byte-level BPE on integer symbols: the merge table of {@code merges.txt} keyed by (left symbol, right symbol), and
 * the two equivalent merge procedures.
 *
 * <p>Symbols are vocabulary ids; strings that a merge produces but the vocabulary lacks get synthetic symbol ids
 * above the vocabulary (they end up as the unknown token, like {@code encoder.get(token, unk)} in Python).
 *
 * <p>{@link #mergeSimple} is the reference loop (repeatedly merge every occurrence of the lowest-ranked adjacent
 * pair, left to right), O(n&sup2;), used for short words. {@link #mergeHeap} produces the same result in
 * O(n log n) with a priority queue processed rank by rank; it bounds the time of very long words.
 */
final class BpeModel {
    /** Words with more symbols than this use the heap procedure. */
    static final int SIMPLE_MAX_SYMBOLS = 48;

    private final int[] baseSymbol;      // byte -> symbol of its byte character
    private final int[] endSymbol;       // byte -> symbol of its byte character + "</w>"
    private final int[] symbolToId;      // symbol -> output id (vocab id or unk id)
    // open-addressing hash: key (left << 32 | right) -> rank, merged symbol
    private final long[] keys;
    private final int[] ranks;
    private final int[] merged;
    private final int mask;

    BpeModel(int[] baseSymbol, int[] endSymbol, int[] symbolToId, long[] pairKeys, int[] pairRanks, int[] pairMerged) {
        this.baseSymbol = baseSymbol.clone();
        this.endSymbol = endSymbol.clone();
        this.symbolToId = symbolToId;
        int cap = Integer.highestOneBit(Math.max(4, pairKeys.length * 2 + 1)) << 1;
        keys = new long[cap];
        Arrays.fill(keys, -1L);
        ranks = new int[cap];
        merged = new int[cap];
        mask = cap - 1;
        for (int i = 0; i < pairKeys.length; i++) {
            int slot = slot(pairKeys[i]);
            while (keys[slot] != -1L && keys[slot] != pairKeys[i]) {
                slot = (slot + 1) & mask;
            }
            keys[slot] = pairKeys[i];      // a duplicate merge line: the later rank wins, as in dict(zip(...))
            ranks[slot] = pairRanks[i];
            merged[slot] = pairMerged[i];
        }
    }

    static long key(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    private int slot(long k) {
        long h = k * 0x9E3779B97F4A7C15L;
        return (int) (h >>> 40) & mask;
    }

    private int find(int left, int right) {
        long k = key(left, right);
        int slot = slot(k);
        while (true) {
            long cur = keys[slot];
            if (cur == k) {
                return slot;
            }
            if (cur == -1L) {
                return -1;
            }
            slot = (slot + 1) & mask;
        }
    }

    /** The rank of merging {@code left right}, or {@link Integer#MAX_VALUE} when there is no such merge. */
    int rank(int left, int right) {
        int s = find(left, right);
        return s < 0 ? Integer.MAX_VALUE : ranks[s];
    }

    int mergedSymbol(int left, int right) {
        int s = find(left, right);
        if (s < 0) {
            throw new IllegalStateException("no merge");
        }
        return merged[s];
    }

    int outputId(int symbol) {
        return symbolToId[symbol];
    }

    /** Initial symbols of a word given as UTF-8 bytes: byte characters, the last one with "</w>". */
    int[] initialSymbols(byte[] utf8, int len) {
        int[] w = new int[len];
        for (int i = 0; i < len - 1; i++) {
            w[i] = baseSymbol[utf8[i] & 0xFF];
        }
        w[len - 1] = endSymbol[utf8[len - 1] & 0xFF];
        return w;
    }

    /** BPE of one pre-token (its UTF-8 bytes), as output ids. */
    int[] encodeWord(byte[] utf8, int len) {
        int[] w = initialSymbols(utf8, len);
        int n = len <= SIMPLE_MAX_SYMBOLS ? mergeSimple(w, len) : mergeHeap(w, len);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = symbolToId[w[i]];
        }
        return ids;
    }

    /** The reference procedure, in place on {@code w[0..len)}; returns the new length. */
    int mergeSimple(int[] w, int len) {
        while (len > 1) {
            int best = Integer.MAX_VALUE;
            int bestSlot = -1;
            for (int i = 0; i < len - 1; i++) {
                int s = find(w[i], w[i + 1]);
                if (s >= 0 && ranks[s] < best) {
                    best = ranks[s];
                    bestSlot = s;
                }
            }
            if (bestSlot < 0) {
                break;
            }
            int first = (int) (keys[bestSlot] >>> 32);
            int second = (int) keys[bestSlot];
            int m = merged[bestSlot];
            int j = 0;
            int i = 0;
            while (i < len) {
                if (i < len - 1 && w[i] == first && w[i + 1] == second) {
                    w[j++] = m;
                    i += 2;
                } else {
                    w[j++] = w[i++];
                }
            }
            len = j;
        }
        return len;
    }

    /**
     * Same result as {@link #mergeSimple} in O(n log n): a heap of (rank, position) pair entries on a linked list
     * of symbols. All entries of the lowest rank are applied left to right before the pairs they create are
     * queued, which is exactly one pass of the reference loop.
     */
    int mergeHeap(int[] w, int len) {
        if (len < 2) {
            return len;
        }
        int[] next = new int[len];
        int[] prev = new int[len];
        int[] touchedRound = new int[len];
        for (int i = 0; i < len; i++) {
            next[i] = i + 1 < len ? i + 1 : -1;
            prev[i] = i - 1;
        }
        LongHeap heap = new LongHeap(len * 3 + 4);
        for (int i = 0; i < len - 1; i++) {
            int r = rank(w[i], w[i + 1]);
            if (r != Integer.MAX_VALUE) {
                heap.push(((long) r << 32) | i);
            }
        }
        int[] touched = new int[len];
        int round = 0;
        while (!heap.isEmpty()) {
            int r = (int) (heap.peek() >>> 32);
            round++;
            int nt = 0;
            while (!heap.isEmpty() && (int) (heap.peek() >>> 32) == r) {
                int p = (int) heap.pop();
                if (w[p] < 0) {
                    continue;                          // removed by an earlier merge
                }
                int q = next[p];
                if (q < 0 || rank(w[p], w[q]) != r) {
                    continue;                          // stale entry: the pair changed
                }
                w[p] = mergedSymbol(w[p], w[q]);
                w[q] = -1;
                int nq = next[q];
                next[p] = nq;
                if (nq >= 0) {
                    prev[nq] = p;
                }
                if (touchedRound[p] != round) {
                    touchedRound[p] = round;
                    touched[nt++] = p;
                }
            }
            for (int t = 0; t < nt; t++) {
                int p = touched[t];
                if (w[p] < 0) {
                    continue;
                }
                int a = prev[p];
                if (a >= 0 && touchedRound[a] != round) {     // pair (a, p); if a was touched it queues it below
                    int ra = rank(w[a], w[p]);
                    if (ra != Integer.MAX_VALUE) {
                        heap.push(((long) ra << 32) | a);
                    }
                }
                int b = next[p];
                if (b >= 0) {
                    int rb = rank(w[p], w[b]);
                    if (rb != Integer.MAX_VALUE) {
                        heap.push(((long) rb << 32) | p);
                    }
                }
            }
        }
        int n = 0;
        for (int i = 0; i >= 0; i = next[i]) {
            w[n++] = w[i];
        }
        return n;
    }

    /** Min-heap of longs. */
    private static final class LongHeap {
        private long[] a;
        private int size;

        LongHeap(int cap) {
            a = new long[Math.max(4, cap)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        long peek() {
            return a[0];
        }

        void push(long v) {
            if (size == a.length) {
                a = Arrays.copyOf(a, a.length * 2);
            }
            int i = size++;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (a[parent] <= v) {
                    break;
                }
                a[i] = a[parent];
                i = parent;
            }
            a[i] = v;
        }

        long pop() {
            long top = a[0];
            long v = a[--size];
            int i = 0;
            int half = size >>> 1;
            while (i < half) {
                int c = 2 * i + 1;
                if (c + 1 < size && a[c + 1] < a[c]) {
                    c++;
                }
                if (a[c] >= v) {
                    break;
                }
                a[i] = a[c];
                i = c;
            }
            a[i] = v;
            return top;
        }
    }
}
