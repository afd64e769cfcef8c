package freshrank.flink;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/**
 * What the tests pin to the Python reference, one JSON value per stdin line to one per stdout line:
 * {@code score PRIOR_SHARE POSTS_PER_AUTHOR}: {@code [count, authors (-1: unknown), baseline, volume,
 * prev_volume]} to {@code [evidence, expected, z]}; {@code tags TABLE}: a text to its hashtags (null: Python
 * decides); {@code time}: a created_at string to epoch ms (null: Python decides).
 */
public final class Check {
    private Check() {}

    public static void main(String[] args) throws IOException {
        ObjectMapper json = new ObjectMapper();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        Score score = args[0].equals("score") ? new Score(Double.parseDouble(args[1]), Long.parseLong(args[2]), 0) : null;
        Hashtags hashtags = args[0].equals("tags") ? Hashtags.load(args[1]) : null;
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            Object answer;
            if (score != null) {
                long[] f = json.readValue(line, long[].class);
                long x = score.evidence(f[0], f[1]);
                double lam = score.expected(f[2], f[3], f[4]);
                answer = List.of(x, lam, Score.z(x, lam));
            } else if (hashtags != null) {
                answer = hashtags.find(json.readValue(line, String.class));
            } else {
                long ms = Times.iso(json.readValue(line, String.class));
                answer = ms == Times.UNKNOWN ? null : ms;
            }
            out.println(json.writeValueAsString(answer));
        }
        out.flush();
    }
}
