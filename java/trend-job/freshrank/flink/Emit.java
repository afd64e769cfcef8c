package freshrank.flink;

import java.io.BufferedWriter;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;

/**
 * Hands each window over as soon as it fires: printed as {@code FRESHRANK <json>} on the JVM's stdout (the
 * launcher reads it in a local mini-cluster) and, when the job writes the store itself (a deployed job), piped
 * to the Python helper in store mode. Not the collect sink: with checkpoints on, it hands results over only at
 * checkpoints.
 */
public class Emit extends ProcessFunction<String, String> {
    private final List<String> storeCommand; // null: stdout only
    private transient PrintStream out;
    private transient Process store;
    private transient BufferedWriter toStore;

    public Emit(List<String> storeCommand) {
        this.storeCommand = storeCommand;
    }

    @Override
    public void open(OpenContext context) throws IOException {
        out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        if (storeCommand != null) {
            store = new ProcessBuilder(storeCommand).redirectOutput(ProcessBuilder.Redirect.INHERIT)
                    .redirectError(ProcessBuilder.Redirect.INHERIT).start();
            toStore = new BufferedWriter(new OutputStreamWriter(store.getOutputStream(), StandardCharsets.UTF_8));
        }
    }

    @Override
    public void processElement(String window, Context context, Collector<String> ignored) throws IOException {
        out.println(TrendJob.MARKER + window);
        if (toStore != null) {
            toStore.write(window);
            toStore.write('\n');
            toStore.flush();
        }
    }

    @Override
    public void close() throws Exception {
        if (toStore != null) {
            toStore.close();
            int code = store.waitFor();
            if (code != 0) {
                throw new IOException("the trend store writer exited with " + code);
            }
        }
    }
}
