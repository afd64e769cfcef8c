package freshrank.flink;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;

/**
 * Prints each window as {@code FRESHRANK <json>} on the JVM's stdout as soon as it fires, for the launcher (a
 * local mini-cluster). Not the collect sink: with checkpoints on, it hands results over only at checkpoints.
 */
public class Emit extends ProcessFunction<String, String> {
    private transient PrintStream out;

    @Override
    public void open(OpenContext context) {
        out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
    }

    @Override
    public void processElement(String window, Context context, Collector<String> ignored) {
        out.println(TrendJob.MARKER + window);
    }
}
