/*
 * Copyright Crossdoc contributors. Licensed under the Apache License, Version 2.0.
 */
package org.crossdoc.opensearch.nori;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.ko.KoreanReadingFormFilter;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.IndexSettings;
import org.opensearch.index.analysis.AbstractTokenFilterFactory;

/** `nori_readingform`: replaces Hanja tokens by their Hangul reading (行政 → 행정). */
public final class NoriReadingFormFilterFactory extends AbstractTokenFilterFactory {
    public NoriReadingFormFilterFactory(IndexSettings indexSettings, Environment env, String name, Settings settings) {
        super(indexSettings, name, settings);
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return new KoreanReadingFormFilter(tokenStream);
    }
}
