package freshrank.flink;

/**
 * The burst test of {@code freshrank/trends/score.py} ({@code BurstModel}, {@code burst_z}); the test
 * {@code tests/trends/test_flink_units.py} runs it ({@link Check}) on a grid and pins it to the Python.
 */
public final class Score implements java.io.Serializable {
    final double priorShare;
    final long postsPerAuthor;
    final double minZ;

    public Score(double priorShare, long postsPerAuthor, double minZ) {
        this.priorShare = priorShare;
        this.postsPerAuthor = postsPerAuthor;
        this.minZ = minZ;
    }

    /** {@code x}: the posts that count as evidence (capped per distinct author; authors &lt; 0: unknown). */
    public long evidence(long count, long authors) {
        return authors < 0 ? count : Math.min(count, postsPerAuthor * authors);
    }

    /** {@code λ}: the count expected in the current window without a burst. */
    public double expected(long baseline, long volume, long prevVolume) {
        return (double) baseline * (volume + 1) / (prevVolume + 1) + priorShare * (volume + 1);
    }

    /** Signed root of the Poisson likelihood-ratio statistic of {@code x} against {@code lam}. */
    public static double z(double x, double lam) {
        double term = x > 0 ? x * Math.log(x / lam) : 0.0;
        double root = Math.sqrt(Math.max(2.0 * (term - (x - lam)), 0.0));
        return x > lam ? root : x < lam ? -root : 0.0;
    }
}
