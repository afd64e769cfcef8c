package freshrank.flink;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Python's extractor and time parser ({@code python -m freshrank.trends.flink.helper}) for the posts the Java
 * fast path leaves to them: one JSON request and one JSON answer per line over a pipe.
 */
public final class PythonHelper implements AutoCloseable {
    private final Process process;
    private final BufferedWriter in;
    private final BufferedReader out;
    private final ObjectMapper json = new ObjectMapper();

    public PythonHelper(List<String> command) throws IOException {
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.redirectError(ProcessBuilder.Redirect.INHERIT);
        process = builder.start();
        in = new BufferedWriter(new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8));
        out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    }

    private JsonNode ask(String field, String value) throws IOException {
        in.write(json.writeValueAsString(java.util.Map.of(field, value)));
        in.write('\n');
        in.flush();
        String answer = out.readLine();
        if (answer == null) {
            throw new IOException("the Python helper exited");
        }
        return json.readTree(answer);
    }

    /** The (key, spelling) pairs of a text: each key once, blocked keys dropped. */
    public JsonNode tags(String text) throws IOException {
        return ask("text", text);
    }

    /** Epoch ms of a {@code created_at} text (0: unreadable). */
    public long time(String createdAt) throws IOException {
        return ask("created_at", createdAt).asLong();
    }

    @Override
    public void close() throws IOException {
        in.close();
        try {
            process.waitFor();
        } catch (InterruptedException e) {
            process.destroy();
            Thread.currentThread().interrupt();
        }
    }
}
