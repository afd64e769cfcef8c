package freshrank.flink;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.state.ListState;

/** The pieces of the operators' checkpoint blobs: per-slice counts and strings. */
final class Blobs {
    private Blobs() {}

    /** What an operator writes into its blob. */
    interface Writer {
        void write(DataOutputStream out) throws IOException;
    }

    /** Replaces the operator's state with one blob. */
    static void save(ListState<byte[]> state, Writer writer) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        writer.write(out);
        out.flush();
        state.update(List.of(bytes.toByteArray()));
    }

    /** Slice → {uses, posts}. */
    static void writeCounts(DataOutputStream out, Map<Long, long[]> counts) throws IOException {
        out.writeInt(counts.size());
        for (Map.Entry<Long, long[]> e : counts.entrySet()) {
            out.writeLong(e.getKey());
            out.writeLong(e.getValue()[0]);
            out.writeLong(e.getValue()[1]);
        }
    }

    /** Adds the counts of a blob to {@code into} (blobs of several subtasks add up). */
    static void readCounts(DataInputStream in, Map<Long, long[]> into) throws IOException {
        for (int n = in.readInt(); n > 0; n--) {
            long[] counts = into.computeIfAbsent(in.readLong(), b -> new long[2]);
            counts[0] += in.readLong();
            counts[1] += in.readLong();
        }
    }

    static void writeString(DataOutputStream out, String s) throws IOException {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        out.writeInt(b.length);
        out.write(b);
    }

    static String readString(DataInputStream in) throws IOException {
        byte[] b = new byte[in.readInt()];
        in.readFully(b);
        return new String(b, StandardCharsets.UTF_8);
    }
}
