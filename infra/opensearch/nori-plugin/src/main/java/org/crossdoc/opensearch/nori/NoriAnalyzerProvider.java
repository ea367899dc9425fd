/*
 * Copyright Crossdoc contributors. Licensed under the Apache License, Version 2.0.
 */
package org.crossdoc.opensearch.nori;

import org.apache.lucene.analysis.ko.KoreanAnalyzer;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.IndexSettings;
import org.opensearch.index.analysis.AbstractIndexAnalyzerProvider;

/**
 * `nori` analyzer: nori tokenizer, part-of-speech stop filter, reading form and lowercase
 * (Lucene's KoreanAnalyzer), with the tokenizer's dictionary and mode options and `stoptags`.
 */
public final class NoriAnalyzerProvider extends AbstractIndexAnalyzerProvider<KoreanAnalyzer> {
    private final KoreanAnalyzer analyzer;

    public NoriAnalyzerProvider(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        super(indexSettings, name, settings);
        this.analyzer = new KoreanAnalyzer(
                NoriSettings.userDictionary(env, settings),
                NoriSettings.decompoundMode(settings),
                NoriSettings.stopTags(env, settings),
                false);
    }

    @Override
    public KoreanAnalyzer get() {
        return analyzer;
    }
}
